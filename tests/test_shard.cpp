// Sharding a sweep (`dalesim run --shard K/N`, the Slurm array default) and `dalesim merge`: the
// assignment is deterministic and balanced, and the merged file of the shards equals a
// single-process run of the same sweep value by value.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <string>

#include "dalesim/config.hpp"
#include "dalesim/sweep.hpp"
#include "io/h5.hpp"
#include "sweep/shard.hpp"
#include "test_h5_compare.hpp"
#include "test_paths.hpp"

namespace {

namespace fs = std::filesystem;
using dalesim::ShardSpec;

// ---- assignment -------------------------------------------------------------------------------

TEST(Shard, ParsesKOfNAndRejectsTheRestNamingKeyValueAndAllowed) {
  const ShardSpec s = dalesim::parse_shard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  for (const char* bad : {"5/5", "0/0", "-1/2", "a/b", "1", "1/2/3", " 1/2", "1/", "/2", "1.0/2"}) {
    try {
      dalesim::parse_shard(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const dalesim::ConfigError& e) {
      EXPECT_EQ(e.key(), "--shard");
      EXPECT_EQ(e.value(), bad);
      EXPECT_NE(e.allowed().find("0 <= K < N"), std::string::npos) << e.what();
    }
  }
}

TEST(Shard, LongestProcessingTimeIsBalancedAndDeterministic) {
  // Costs 8,7,6,5,4 over 2 shards: 8->0, 7->1, 6->1 (7<8), 5->0 (8<13), 4->0 (13=13: lower shard).
  EXPECT_EQ(dalesim::assign_shards({8, 7, 6, 5, 4}, 2), (std::vector<int>{0, 1, 1, 0, 0}));
  // Equal costs: by position, round robin.
  EXPECT_EQ(dalesim::assign_shards({1, 1, 1, 1, 1}, 3), (std::vector<int>{0, 1, 2, 0, 1}));
  // A skewed grid (sizes 16, 32, 64, 128 units, 6 seeds each): every shard within 15% of the mean.
  std::vector<double> cost;
  for (double n : {16, 32, 64, 128})
    for (int s = 0; s < 6; ++s) cost.push_back(n * n);
  for (int n_shards : {2, 3, 4, 6}) {
    const std::vector<int> shard = dalesim::assign_shards(cost, n_shards);
    EXPECT_EQ(shard, dalesim::assign_shards(cost, n_shards));
    std::vector<double> load(n_shards, 0);
    for (std::size_t r = 0; r < cost.size(); ++r) load[shard[r]] += cost[r];
    const double mean = std::accumulate(load.begin(), load.end(), 0.0) / n_shards;
    for (double l : load) EXPECT_NEAR(l / mean, 1.0, 0.15) << n_shards << " shards";
  }
}

const char* kSweep = R"(
name = "shard-test"
[model]
arch = "mix"
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
n_steps = 7
log_every = 3
checkpoint_every = 5
[sweep]
seeds = 2
[sweep.grid]
"model.alpha_init" = [0.3, 0.7]
"model.n_units" = [6, 10, 16]
)";

TEST(Shard, SelectShardKeepsGlobalIdsAndCoversEveryReplicaOnce) {
  const dalesim::Sweep sweep = dalesim::parse_sweep(kSweep, "test");
  std::multiset<int> seen;
  for (int k = 0; k < 5; ++k) {
    const dalesim::Sweep part = dalesim::select_shard(sweep, ShardSpec{k, 5});
    EXPECT_EQ(part.source_text, sweep.source_text);
    for (std::size_t i = 0; i < part.replicas.size(); ++i) {
      seen.insert(part.replicas[i].id);
      if (i) EXPECT_LT(part.replicas[i - 1].id, part.replicas[i].id);
      EXPECT_EQ(part.replicas[i].init_seed, sweep.replicas[part.replicas[i].id].init_seed);
    }
  }
  EXPECT_EQ(seen.size(), sweep.replicas.size());
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), sweep.replicas.size());
  EXPECT_THROW(dalesim::select_shard(sweep, ShardSpec{12, 13}), dalesim::ConfigError);  // 12 replicas
  // More shards than replicas is refused for every shard, also those that would not be empty.
  EXPECT_THROW(dalesim::select_shard(sweep, ShardSpec{0, 13}), dalesim::ConfigError);
}

TEST(Shard, SlurmArrayEnvironmentIsTheDefault) {
  unsetenv("SLURM_ARRAY_TASK_ID");
  unsetenv("SLURM_ARRAY_TASK_COUNT");
  unsetenv("SLURM_ARRAY_TASK_MIN");
  EXPECT_FALSE(dalesim::shard_from_slurm_environment().has_value());
  setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  setenv("SLURM_ARRAY_TASK_MIN", "5", 1);  // --array=5-8
  auto s = dalesim::shard_from_slurm_environment();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 4);
  setenv("SLURM_ARRAY_TASK_ID", "9", 1);  // past MIN + COUNT - 1 (an array with a step)
  EXPECT_THROW(dalesim::shard_from_slurm_environment(), dalesim::ConfigError);
  unsetenv("SLURM_ARRAY_TASK_MIN");
  setenv("SLURM_ARRAY_TASK_ID", "3", 1);
  EXPECT_EQ(dalesim::shard_from_slurm_environment()->index, 3);
  setenv("SLURM_ARRAY_TASK_STEP", "1", 1);
  EXPECT_EQ(dalesim::shard_from_slurm_environment()->index, 3);
  setenv("SLURM_ARRAY_TASK_STEP", "2", 1);  // --array=0-6:2 has COUNT 4 and ids 0, 2, 4, 6
  setenv("SLURM_ARRAY_TASK_ID", "2", 1);
  try {
    dalesim::shard_from_slurm_environment();
    ADD_FAILURE() << "a stepped array accepted";
  } catch (const dalesim::ConfigError& e) {
    EXPECT_EQ(e.key(), "SLURM_ARRAY_TASK_STEP");
    EXPECT_NE(std::string(e.what()).find("without a step"), std::string::npos) << e.what();
  }
  unsetenv("SLURM_ARRAY_TASK_STEP");
  unsetenv("SLURM_ARRAY_TASK_COUNT");
  EXPECT_THROW(dalesim::shard_from_slurm_environment(), dalesim::ConfigError);
  unsetenv("SLURM_ARRAY_TASK_ID");
}

TEST(Shard, SweepHashIsFnv1a) {
  EXPECT_EQ(dalesim::sweep_hash(""), "cbf29ce484222325");
  EXPECT_EQ(dalesim::sweep_hash("a"), "af63dc4c8601ec8c");
}

// ---- the program ------------------------------------------------------------------------------

using dalesim::test::Outcome;
using dalesim::test::run_dalesim;

// Every dataset of `b` equals that of `a` bit for bit, and the two hold the same datasets; root
// attributes equal except when and how the file was made.
void expect_same_file(const std::string& a_path, const std::string& b_path) {
  dalesim::h5::silence_errors();
  const dalesim::h5::File a = dalesim::h5::File::open_read_only(a_path);
  const dalesim::h5::File b = dalesim::h5::File::open_read_only(b_path);
  for (const char* attr : {"format", "sweep_name", "sweep_text", "sweep_hash", "resolved_config", "sweep_axes",
                           "status", "backend", "device"})
    EXPECT_EQ(a.string_attribute(attr), b.string_attribute(attr)) << attr;
  EXPECT_EQ(a.int_attribute("n_replicas"), b.int_attribute("n_replicas"));
  EXPECT_FALSE(b.has_attribute("shard_count"));
  EXPECT_GT(dalesim::test::expect_same_datasets(a_path, b_path), 1000u);
}

class ShardCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("dalesim_shard_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    sweep_ = path("sweep.toml");
    std::ofstream(sweep_) << kSweep;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string run_shard(int k, int n, const std::string& name, const std::string& sweep = "") {
    const std::string out = path(name);
    const Outcome o = run_dalesim("run " + (sweep.empty() ? sweep_ : sweep) + " --backend cpu --threads 2 -q --shard " +
                                  std::to_string(k) + "/" + std::to_string(n) + " -o " + out);
    EXPECT_EQ(o.code, 0) << o.output;
    return out;
  }
  fs::path dir_;
  std::string sweep_;
};

TEST_F(ShardCli, MergedShardsEqualASingleProcessRun) {
  const Outcome whole = run_dalesim("run " + sweep_ + " --backend cpu --threads 2 -q -o " + path("all.h5"));
  ASSERT_EQ(whole.code, 0) << whole.output;
  const std::string s0 = run_shard(0, 3, "s0.h5"), s1 = run_shard(1, 3, "s1.h5"), s2 = run_shard(2, 3, "s2.h5");
  {
    const dalesim::h5::File f = dalesim::h5::File::open_read_only(s1);
    EXPECT_EQ(f.int_attribute("shard_index"), 1);
    EXPECT_EQ(f.int_attribute("shard_count"), 3);
    EXPECT_EQ(f.int_attribute("sweep_n_replicas"), 12);
    EXPECT_EQ(f.string_attribute("sweep_hash"), dalesim::sweep_hash(kSweep));
  }
  const Outcome merged = run_dalesim("merge " + s2 + " " + s0 + " " + s1 + " -o " + path("merged.h5"));
  ASSERT_EQ(merged.code, 0) << merged.output;
  EXPECT_NE(merged.output.find("12 replicas from 3 files"), std::string::npos) << merged.output;
  expect_same_file(path("all.h5"), path("merged.h5"));
}

// Tasks with and without trial conditions: /checkpoints/eval_accuracy_by_condition and
// /replicas/conditions are merged as a single process writes them.
TEST_F(ShardCli, MergedShardsWithTrialConditionsEqualASingleProcessRun) {
  const std::string sweep = path("conditions.toml");
  std::ofstream(sweep) << "name = \"conditions\"\n[model]\narch = \"mix\"\nn_units = 8\n[task]\nbatch = 8\n"
                          "[train]\nn_steps = 4\nlog_every = 2\ncheckpoint_every = 2\n[sweep]\nseeds = 2\n"
                          "[sweep.grid]\n\"task.name\" = [\"adding\", \"go_nogo\", \"perceptual_dm\"]\n";
  const Outcome whole = run_dalesim("run " + sweep + " --backend cpu --threads 2 -q -o " + path("all.h5"));
  ASSERT_EQ(whole.code, 0) << whole.output;
  const std::string s0 = run_shard(0, 2, "c0.h5", sweep), s1 = run_shard(1, 2, "c1.h5", sweep);
  const Outcome merged = run_dalesim("merge " + s1 + " " + s0 + " -o " + path("merged.h5"));
  ASSERT_EQ(merged.code, 0) << merged.output;
  expect_same_file(path("all.h5"), path("merged.h5"));
  const dalesim::h5::File f = dalesim::h5::File::open_read_only(path("merged.h5"));
  EXPECT_EQ(f.open_group("checkpoints").open_dataset("eval_accuracy_by_condition").dims(),
            (dalesim::h5::Dims{3, 6, 5}));  // 3 checkpoints, 6 replicas, perceptual_dm's 5 coherences
}

TEST_F(ShardCli, RerunningAFinishedShardIsANoOp) {
  const std::string s0 = run_shard(0, 2, "s0.h5");
  const auto before = fs::last_write_time(s0);
  const Outcome again = run_dalesim("run " + sweep_ + " --shard 0/2 -o " + s0);
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("already complete; nothing to do"), std::string::npos) << again.output;
  EXPECT_EQ(fs::last_write_time(s0), before);
  // Another shard onto the same file is not a no-op: the file is refused as it exists.
  const Outcome other = run_dalesim("run " + sweep_ + " --shard 1/2 -o " + s0);
  EXPECT_EQ(other.code, 2) << other.output;
  // The Slurm array variables choose the shard when --shard is absent.
  const Outcome env = run_dalesim("run " + sweep_ + " -o " + s0,
                                  "SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=4 SLURM_ARRAY_TASK_COUNT=2");
  EXPECT_EQ(env.code, 0) << env.output;
  EXPECT_NE(env.output.find("shard 0/2"), std::string::npos) << env.output;
}

TEST_F(ShardCli, BadShardValuesExitTwoAndWriteNothing) {
  for (const char* bad : {"3/3", "x/2", "0/0", "1"}) {
    const Outcome o = run_dalesim("run " + sweep_ + " --shard " + std::string(bad) + " -o " + path("bad.h5"));
    EXPECT_EQ(o.code, 2) << bad << ": " << o.output;
    EXPECT_NE(o.output.find("--shard"), std::string::npos) << o.output;
    EXPECT_NE(o.output.find(bad), std::string::npos) << o.output;
    EXPECT_NE(o.output.find("0 <= K < N"), std::string::npos) << o.output;
  }
  for (const char* too_many : {"12/13", "0/13"}) {  // 12 replicas
    const Outcome empty = run_dalesim("run " + sweep_ + " --shard " + std::string(too_many) + " -o " + path("bad.h5"));
    EXPECT_EQ(empty.code, 2) << empty.output;
    EXPECT_NE(empty.output.find("at most as many shards as replicas (12)"), std::string::npos) << empty.output;
  }
  EXPECT_FALSE(fs::exists(path("bad.h5")));
}

TEST_F(ShardCli, MergeRefusesWhatItCannotJoin) {
  const std::string s0 = run_shard(0, 3, "s0.h5"), s1 = run_shard(1, 3, "s1.h5"), s2 = run_shard(2, 3, "s2.h5");
  auto refused = [&](const std::string& inputs, const std::string& expect) {
    const Outcome o = run_dalesim("merge " + inputs + " -o " + path("m.h5"));
    EXPECT_EQ(o.code, 2) << inputs << ": " << o.output;
    EXPECT_NE(o.output.find(expect), std::string::npos) << o.output;
    EXPECT_FALSE(fs::exists(path("m.h5")));
  };
  refused(s0 + " " + s1, "missing shard(s) 2 of 3");
  refused(s0 + " " + s1 + " " + s2 + " " + s1, "the shards overlap");
  // Another sweep (one more step): its shard is refused by name.
  std::string other_text = kSweep;
  other_text.replace(other_text.find("n_steps = 7"), 11, "n_steps = 8");
  const std::string other = path("other.toml");
  std::ofstream(other) << other_text;
  const std::string o2 = run_shard(2, 3, "o2.h5", other);
  refused(s0 + " " + s1 + " " + o2, "different sweeps");
  // A shard whose run did not finish (status "running").
  fs::copy_file(s2, path("s2_running.h5"));
  {
    hid_t f = H5Fopen(path("s2_running.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    dalesim::h5::Object root(f, H5Fclose, path("s2_running.h5"), "/");
    root.set_attribute("status", "running");
  }
  refused(s0 + " " + s1 + " " + path("s2_running.h5"), "incomplete");
  // A directory, and a shard damaged inside (a flipped object header): named, exit 2.
  refused(s0 + " " + s1 + " " + dir_.string(), dir_.string() + " is a directory, not a shard file");
  fs::copy_file(s2, path("s2_damaged.h5"));
  dalesim::test::flip_object_header(path("s2_damaged.h5"), "checkpoints/spectral_radius");
  refused(s0 + " " + s1 + " " + path("s2_damaged.h5"), path("s2_damaged.h5") + " is damaged: ");
  refused(s0 + " " + s1 + " " + path("nope.h5"), "no such file");
  // An existing output is not overwritten without --force.
  std::ofstream(path("m.h5")) << "x";
  const Outcome exists = run_dalesim("merge " + s0 + " " + s1 + " " + s2 + " -o " + path("m.h5"));
  EXPECT_EQ(exists.code, 2) << exists.output;
  EXPECT_NE(exists.output.find("--force"), std::string::npos) << exists.output;
}

}  // namespace
