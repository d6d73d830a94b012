// `dalesim merge`: shard files of one sweep -> one file laid out like a single-process run.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "dalesim/config.hpp"
#include "io/merge.hpp"

namespace dalesim::cli {

Action add_merge_command(CLI::App& app, const std::string& command_line) {
  struct Opts {
    std::vector<std::string> shards;
    std::string output;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "merge", "join the shard files of one sweep (dalesim run --shard K/N) into one file, as a single run writes");
  cmd->add_option("shards", o->shards, "shard files (HDF5), in any order")->required();
  cmd->add_option("-o,--output", o->output, "merged HDF5 file")->required();
  cmd->add_flag("--force", o->force, "overwrite an existing output file");
  return [o, command_line]() {
    namespace fs = std::filesystem;
    const fs::path out(o->output);
    if (fs::exists(out) && !o->force)
      throw ConfigError("--output", o->output, "a path that does not exist yet", "pass --force to overwrite it");
    const fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    if (!fs::is_directory(dir))
      throw ConfigError("--output", o->output, "a file in an existing directory",
                        "directory " + dir.string() + " does not exist");
    MergeResult res;
    try {
      res = merge_run_files(o->shards, o->output, command_line, o->force);
    } catch (const InputError&) {
      throw;
    } catch (const std::runtime_error& e) {
      // A read that fails inside a shard file that opened (a flipped bit, a truncated copy) is bad
      // input, named by its file and object, not a raw HDF5 stack with exit 1.
      const std::string what = e.what();
      for (const std::string& shard : o->shards)
        if (what.find(" on " + shard + ":") != std::string::npos) {
          const std::string head = what.substr(0, what.find(" (h5.cpp"));
          throw InputError(shard + " is damaged: " + head +
                           "; check each shard with `dalesim inspect`, then delete the damaged one and run its shard again");
        }
      throw;
    }
    std::printf("wrote %s: %d replicas from %d files, %zu history rows, %zu checkpoints\n", o->output.c_str(),
                res.n_replicas, res.n_inputs, res.n_history_rows, res.n_checkpoints);
    return 0;
  };
}

}  // namespace dalesim::cli
