// Sweep files: parse the TOML, expand grid x zip x seeds into per-replica configs and validate
// every replica before anything runs.
#include "dalesim/sweep.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <map>
#include <set>
#include <sstream>

#include "dalesim/task.hpp"
#include "sweep/keys.hpp"
#include "sweep/shard.hpp"
#include "sweep/toml.hpp"

namespace dalesim {

namespace {

using keys::KeySource;

constexpr std::size_t max_replicas = 1000000;

// A leaf of a (possibly nested) TOML table, with its flattened dotted key.
struct Leaf {
  std::string key;
  const toml::node* node;
};

// One sweep axis: a grid key, a [[sweep.zip]] group (several keys varying together) or the seeds.
struct Axis {
  std::vector<std::string> keys;           // canonical keys, declared order
  std::vector<KeySource> sources;          // per key
  std::vector<std::vector<Value>> values;  // [key][position]
  std::size_t size() const { return values.front().size(); }
};

std::string where(const std::string& origin, const toml::node& n) {
  const toml::source_position& p = n.source().begin;
  return p ? origin + ":" + std::to_string(p.line) : origin;
}

// toml++ keeps tables sorted by key; declared order is recovered from source positions.
void flatten(const toml::node& node, const std::string& key, std::vector<Leaf>& out) {
  const toml::table* t = node.as_table();
  if (!t || t->empty()) {
    out.push_back({key, &node});
    return;
  }
  for (auto&& [k, child] : *t)
    flatten(child, key.empty() ? std::string(k.str()) : key + "." + std::string(k.str()), out);
}

void sort_by_position(std::vector<Leaf>& leaves) {
  std::stable_sort(leaves.begin(), leaves.end(), [](const Leaf& a, const Leaf& b) {
    const auto& pa = a.node->source().begin;
    const auto& pb = b.node->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
}

std::vector<Leaf> sorted_leaves(const toml::table& t) {
  std::vector<Leaf> out;
  for (auto&& [k, child] : t) flatten(child, std::string(k.str()), out);
  sort_by_position(out);
  return out;
}

std::optional<Value> to_value(const toml::node& n) {
  if (auto v = n.as_boolean()) return Value(v->get());
  if (auto v = n.as_integer()) return Value(v->get());
  if (auto v = n.as_floating_point()) return Value(v->get());
  if (auto v = n.as_string()) return Value(v->get());
  if (auto a = n.as_array()) {
    std::vector<double> xs;
    for (const toml::node& e : *a) {
      if (auto i = e.as_integer())
        xs.push_back(static_cast<double>(i->get()));
      else if (auto d = e.as_floating_point())
        xs.push_back(d->get());
      else
        return std::nullopt;
    }
    return Value(std::move(xs));
  }
  return std::nullopt;
}

// A node as written, for error messages. Arrays and tables are rendered here rather than by
// toml++'s printer, whose line-width estimate for a float below 1 converts a negative logarithm
// to size_t (undefined behaviour in toml++ 3.3.0; found by tests/fuzz/fuzz_sweep.cpp).
std::string render(const toml::node& n) {
  if (auto v = to_value(n)) return format_value(*v);
  if (const toml::array* a = n.as_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < a->size(); ++i) out += (i ? ", " : "") + render(*a->get(i));
    return out + "]";
  }
  if (const toml::table* t = n.as_table()) {
    std::string out = "{";
    for (auto&& [k, child] : *t) {
      std::string key(k.str());
      const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      });
      out += (out.size() > 1 ? ", " : " ") + (bare ? key : "\"" + key + "\"") + " = " + render(child);
    }
    return out + (out.size() > 1 ? " }" : "}");
  }
  std::ostringstream os;  // dates and times
  n.visit([&](const auto& x) { os << x; });
  return os.str();
}

// Renders a value as TOML (strings escaped), for the resolved config text.
std::string toml_value(const Value& v) {
  if (v.index() != 3) return format_value(v);
  std::string out = "\"";
  for (char c : std::get<std::string>(v)) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else
      out += c;
  }
  return out + "\"";
}

std::string list_text(const std::vector<Value>& xs) {
  std::string out = "[";
  for (std::size_t i = 0; i < xs.size(); ++i) out += (i ? ", " : "") + toml_value(xs[i]);
  return out + "]";
}

std::string with_hint(const std::string& where, const std::string& extra) {
  return extra.empty() ? where : where + ": " + extra;
}

// "task.<task name>.<param>": a parameter of a per-task table.
bool per_task_param(const std::string& key, std::string& task_name, std::string& param) {
  if (key.rfind("task.", 0) != 0) return false;
  const std::size_t dot = key.find('.', 5);
  if (dot == std::string::npos) return false;
  task_name = key.substr(5, dot - 5);
  param = key.substr(dot + 1);
  if (param.find('.') != std::string::npos) return false;
  for (const TaskInfo& t : task_registry())
    if (t.name == task_name) return true;
  return false;
}

// Converts and checks one value written for `key` (unknown keys and wrong types are errors).
Value read_value(const std::string& key, const toml::node& n, const KeySource& src) {
  if (!keys::is_config_key(key) && !keys::is_task_param(key)) {
    const std::string near = keys::closest_key(key);
    throw ConfigError(src.written, render(n), "a key listed in docs/sweep-format.md",
                      with_hint(src.where, near.empty() ? "unknown key" : "unknown key; did you mean " + near + "?"));
  }
  std::optional<Value> v = to_value(n);
  if (!v) {
    std::string allowed = "bool, int, float, string or a list of numbers";
    for (const KeySpec& k : config_keys())
      if (k.key == key) allowed = k.allowed;
    throw ConfigError(src.written, render(n), allowed, with_hint(src.where, "wrong type"));
  }
  return keys::check_value(key, *v, src);
}

// Reads the list of one axis key ("sweep.grid.<key>" or "sweep.zip.<key>").
std::vector<Value> read_axis_list(const std::string& key, const toml::node& n, const KeySource& src) {
  const toml::array* a = n.as_array();
  if (!keys::is_config_key(key) && !keys::is_task_param(key)) read_value(key, n, src);  // throws unknown key
  if (!keys::is_sweepable(key))
    throw ConfigError(src.written, render(n), "a per-replica key", with_hint(src.where, key + " cannot be swept"));
  if (!a) throw ConfigError(src.written, render(n), "a non-empty list of values", with_hint(src.where, "not a list"));
  if (a->empty())
    throw ConfigError(src.written, "[]", "a non-empty list of values", with_hint(src.where, "empty grid list"));
  std::vector<Value> out;
  for (const toml::node& e : *a) out.push_back(read_value(key, e, src));
  return out;
}

Axis read_seeds(const toml::node& n, const std::string& origin) {
  const KeySource src{"sweep.seeds", where(origin, n)};
  const std::string allowed = "an int n >= 1 (seeds 0..n-1) or a non-empty list of ints >= 0";
  Axis axis{{"seed"}, {src}, {{}}};
  if (auto i = n.as_integer()) {
    if (i->get() <= 0) throw ConfigError(src.written, render(n), allowed, src.where);
    if (static_cast<std::uint64_t>(i->get()) > max_replicas)
      throw ConfigError(src.written, render(n), "at most " + std::to_string(max_replicas) + " replicas", src.where);
    for (std::int64_t s = 0; s < i->get(); ++s) axis.values[0].push_back(s);
    return axis;
  }
  const toml::array* a = n.as_array();
  if (!a || a->empty()) throw ConfigError(src.written, render(n), allowed, src.where);
  for (const toml::node& e : *a) {
    if (!e.is_integer())
      throw ConfigError(src.written, render(n), allowed, with_hint(src.where, "not an int: " + render(e)));
    axis.values[0].push_back(keys::check_value("seed", *to_value(e), src));
  }
  return axis;
}

Axis read_zip(const toml::table& t, const std::string& origin) {
  if (t.empty())
    throw ConfigError("sweep.zip", "{}", "at least one key with a non-empty list",
                      with_hint(where(origin, t), "empty zip"));
  Axis axis;
  for (const Leaf& leaf : sorted_leaves(t)) {
    const KeySource src{"sweep.zip." + leaf.key, where(origin, *leaf.node)};
    std::vector<Value> vals = read_axis_list(leaf.key, *leaf.node, src);
    if (!axis.values.empty() && vals.size() != axis.size())
      throw ConfigError(src.written, list_text(vals),
                        "a list of length " + std::to_string(axis.size()) + ", like " + axis.sources[0].written,
                        with_hint(src.where, "zipped lists must have equal lengths"));
    axis.keys.push_back(leaf.key);
    axis.sources.push_back(src);
    axis.values.push_back(std::move(vals));
  }
  return axis;
}

// Reads [sweep]; returns the axes in expansion order (grid, zip groups, seeds last = fastest).
std::vector<Axis> read_sweep_section(const toml::table& sweep, const std::string& origin) {
  std::vector<Axis> grid, zips;
  std::optional<Axis> seeds;
  for (auto&& [k, node] : sweep) {
    const std::string key(k.str());
    if (key == "seeds") {
      seeds = read_seeds(node, origin);
    } else if (key == "grid") {
      const toml::table* t = node.as_table();
      if (!t || t->empty())
        throw ConfigError("sweep.grid", render(node), "a table of key = non-empty list of values",
                          with_hint(where(origin, node), "empty grid"));
      for (const Leaf& leaf : sorted_leaves(*t)) {
        const KeySource src{"sweep.grid." + leaf.key, where(origin, *leaf.node)};
        grid.push_back(Axis{{leaf.key}, {src}, {read_axis_list(leaf.key, *leaf.node, src)}});
      }
    } else if (key == "zip") {
      if (const toml::table* t = node.as_table()) {
        zips.push_back(read_zip(*t, origin));
      } else if (const toml::array* a = node.as_array(); a && a->is_array_of_tables()) {
        for (const toml::node& e : *a) zips.push_back(read_zip(*e.as_table(), origin));
      } else {
        throw ConfigError("sweep.zip", render(node), "[[sweep.zip]] tables of equal-length lists", where(origin, node));
      }
    } else {
      std::string extra = "unknown key";
      for (const char* known : {"seeds", "grid", "zip"})
        if (key.compare(0, 3, known, 3) == 0) extra += std::string("; did you mean sweep.") + known + "?";
      throw ConfigError("sweep." + key, render(node), "sweep.seeds, sweep.grid, [[sweep.zip]]",
                        with_hint(where(origin, node), extra));
    }
  }
  std::vector<Axis> axes = std::move(grid);
  for (Axis& z : zips) axes.push_back(std::move(z));
  if (seeds) axes.push_back(std::move(*seeds));
  return axes;
}

std::string emit_resolved(const std::string& name, const ReplicaConfig& base, const keys::SourceMap& given,
                          const std::vector<Axis>& axes, const toml::table* sweep) {
  std::ostringstream os;
  std::string section;
  bool task_swept = false;
  for (const Axis& a : axes)
    for (const std::string& key : a.keys) task_swept = task_swept || key == "task.name";
  for (const KeySpec& k : config_keys()) {
    const auto dot = k.key.find('.');
    const std::string sec = dot == std::string::npos ? "" : k.key.substr(0, dot);
    const std::string leaf = k.key.substr(dot == std::string::npos ? 0 : dot + 1);
    if (sec != section) os << "\n[" << (section = sec) << "]\n";
    if (k.key == "name") {
      os << "name = " << toml_value(name) << "\n";
    } else if (k.key == "task.name" && task_swept) {
      // No base task ran: each replica's task and all of its parameters are in /replicas.
      os << "# name: swept (see [sweep]); each replica's task is /replicas/task, its parameters "
            "/replicas/task_params\n";
    } else if (k.key.find("_seed") != std::string::npos && !given.count(k.key)) {
      // Derived seeds are uint64 (may not fit a TOML int) and vary with seed: a comment suffices.
      const std::string stream = k.key.substr(0, k.key.find('_'));
      os << "# " << leaf << " = derive_seed(seed, \"" << stream << "\") = " << derive_seed(base.seed, stream.c_str())
         << "\n";
    } else if (k.key == "train.lr_alpha" && base.train.lr_alpha < 0) {
      os << "# lr_alpha: same as lr\n";
    } else {
      os << leaf << " = " << toml_value(keys::get_value(base, k.key)) << "\n";
      if (k.key == "task.batch" && !task_swept) {  // the task's own parameters follow its name and batch
        std::map<std::string, Value> params = base.task.params;
        for (const TaskInfo& t : task_registry())
          if (t.name == base.task.name)
            for (const ParamSpec& p : t.params) params.emplace(p.key, p.default_value);
        for (const auto& [pk, pv] : params) os << pk << " = " << toml_value(pv) << "\n";
      }
    }
  }
  if (sweep) {
    os << "\n[sweep]\n";
    for (const Axis& a : axes)
      if (a.sources[0].written == "sweep.seeds") {
        const toml::node& n = *sweep->get("seeds");
        os << "seeds = " << (n.is_integer() ? render(n) : list_text(a.values[0])) << "\n";
      }
    bool grid_open = false;
    for (const Axis& a : axes) {
      const std::string& w = a.sources[0].written;
      if (w.rfind("sweep.grid.", 0) == 0) {
        if (!grid_open) os << "\n[sweep.grid]\n", grid_open = true;
        os << "\"" << a.keys[0] << "\" = " << list_text(a.values[0]) << "\n";
      } else if (w.rfind("sweep.zip.", 0) == 0) {
        os << "\n[[sweep.zip]]\n";
        for (std::size_t j = 0; j < a.keys.size(); ++j)
          os << "\"" << a.keys[j] << "\" = " << list_text(a.values[j]) << "\n";
      }
    }
  }
  return os.str();
}

// A relative task.path (file task) or task.dir (seqmnist) is read from the sweep file's folder,
// wherever dalesim runs: the replica's value is replaced by that path. A missing one is refused,
// naming the folder searched.
void resolve_data_path(ReplicaConfig& c, const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  const std::string key = c.task.name == "file" ? "path" : c.task.name == "seqmnist" ? "dir" : "";
  if (key.empty()) return;
  auto it = c.task.params.find(key);
  if (it == c.task.params.end() || !std::holds_alternative<std::string>(it->second)) return;
  const std::string value = std::get<std::string>(it->second);
  if (value.empty() || fs::path(value).is_absolute()) return;
  const fs::path base = fs::absolute(folder.empty() ? fs::path(".") : folder).lexically_normal();
  const fs::path resolved = (base / value).lexically_normal();
  std::error_code ec;
  if (!fs::exists(resolved, ec))
    throw ConfigError("task." + key, format_value(it->second),
                      c.task.name == "file" ? "an existing HDF5 file" : "an existing folder of IDX files",
                      "a relative path is read from the sweep file's folder " + base.string() + ": " +
                          resolved.string() + " does not exist");
  it->second = Value{resolved.string()};
}

// `data_folder`: where relative data paths are read from (the sweep file's folder; null: as given).
Sweep parse_sweep_impl(const std::string& text, const std::string& origin, const std::string& default_name,
                       const std::filesystem::path* data_folder = nullptr) {
  const toml::table root = parse_toml(text, origin);

  Sweep out;
  out.name = default_name;
  out.source_text = text;
  const toml::table* sweep = nullptr;
  std::vector<Leaf> leaves;
  for (auto&& [k, node] : root) {
    if (k.str() == "sweep" && node.is_table())
      sweep = node.as_table();
    else
      flatten(node, std::string(k.str()), leaves);
  }
  sort_by_position(leaves);

  // Base config: every key outside [sweep], checked one by one. A table [task.<task name>] holds
  // parameters that apply only to replicas running that task (so one file can sweep over tasks
  // that take different parameters).
  ReplicaConfig base;
  keys::SourceMap given;
  std::map<std::string, std::map<std::string, Value>> per_task;
  for (const Leaf& leaf : leaves) {
    const KeySource src{leaf.key, where(origin, *leaf.node)};
    std::string task_name, param;
    if (per_task_param(leaf.key, task_name, param)) {
      const TaskInfo* info = nullptr;
      for (const TaskInfo& t : task_registry())
        if (t.name == task_name) info = &t;
      std::string known;
      bool found = false;
      for (const ParamSpec& p : info->params) {
        known += (known.empty() ? "" : ", ") + p.key;
        found |= p.key == param;
      }
      if (!found)
        throw ConfigError(src.written, render(*leaf.node), "parameters of task \"" + task_name + "\": " + known,
                          with_hint(src.where, "unknown task parameter"));
      per_task[task_name][param] = read_value("task." + param, *leaf.node, src);
      continue;
    }
    const Value v = read_value(leaf.key, *leaf.node, src);
    if (leaf.key == "name") out.name = std::get<std::string>(v);
    keys::set_value(base, leaf.key, v);
    given[leaf.key] = src;
  }
  const keys::SourceMap base_given = given;

  std::vector<Axis> axes;
  if (sweep) axes = read_sweep_section(*sweep, origin);
  std::size_t n_replicas = 1;
  std::set<std::string> axis_keys;
  for (const Axis& a : axes) {
    for (std::size_t j = 0; j < a.keys.size(); ++j) {
      if (!axis_keys.insert(a.keys[j]).second)
        throw ConfigError(a.sources[j].written, list_text(a.values[j]),
                          "each key on at most one axis (sweep.grid, sweep.zip, sweep.seeds)",
                          with_hint(a.sources[j].where, "duplicate axis " + a.keys[j]));
      given[a.keys[j]] = a.sources[j];  // the grid wins over the base value
      out.axis_keys.push_back(a.keys[j]);
    }
    out.axis_groups.push_back(a.keys);
    if (a.size() > max_replicas / n_replicas)
      throw ConfigError("sweep", "more than " + std::to_string(max_replicas) + " replicas",
                        "at most " + std::to_string(max_replicas) + " replicas", "split the sweep into several files");
    n_replicas *= a.size();
  }

  // Expansion: mixed-radix over the axes, the last axis (seeds) varying fastest.
  std::set<std::string> checked_tasks;
  out.replicas.reserve(n_replicas);
  std::vector<std::size_t> idx(axes.size());
  for (std::size_t r = 0; r < n_replicas; ++r) {
    std::size_t rest = r;
    for (std::size_t a = axes.size(); a-- > 0;) idx[a] = rest % axes[a].size(), rest /= axes[a].size();
    ReplicaConfig cfg = base;
    cfg.id = static_cast<int>(r);
    for (std::size_t a = 0; a < axes.size(); ++a)
      for (std::size_t j = 0; j < axes[a].keys.size(); ++j) {
        const Value& v = axes[a].values[j][idx[a]];
        keys::set_value(cfg, axes[a].keys[j], v);
        cfg.axes.emplace_back(axes[a].keys[j], v);
      }
    const auto own = per_task.find(cfg.task.name);
    if (own != per_task.end())
      for (const auto& [param, v] : own->second)
        if (!axis_keys.count("task." + param)) cfg.task.params[param] = v;  // an axis still wins
    if (data_folder) resolve_data_path(cfg, *data_folder);
    keys::resolve_replica(cfg, given, checked_tasks);
    out.replicas.push_back(std::move(cfg));
  }
  out.resolved_text = emit_resolved(out.name, base, base_given, axes, sweep);
  return out;
}

}  // namespace

Sweep parse_sweep(const std::string& text, const std::string& origin) {
  return parse_sweep_impl(text, origin, "sweep");
}

std::string data_files_identity(const Sweep& sweep) {
  std::set<std::string> files;
  for (const ReplicaConfig& c : sweep.replicas) {
    const auto param = [&](const char* key) {
      const auto it = c.task.params.find(key);
      return it != c.task.params.end() && std::holds_alternative<std::string>(it->second)
                 ? std::get<std::string>(it->second)
                 : std::string();
    };
    if (c.task.name == "file" && !param("path").empty()) files.insert(param("path"));
    if (c.task.name == "seqmnist" && !param("dir").empty())
      for (const char* base : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                               "t10k-labels-idx1-ubyte"})
        for (const std::string ext : {"", ".gz"}) {
          const std::string p = param("dir") + "/" + base + ext;
          std::error_code ec;
          if (std::filesystem::is_regular_file(p, ec)) files.insert(p);
        }
  }
  std::string out;
  for (const std::string& p : files) {
    std::ifstream in(p, std::ios::binary);
    std::uint64_t h = kFnv1a64Offset, n = 0;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      const auto got = static_cast<std::size_t>(in.gcount());
      h = fnv1a64(buf, got, h);
      n += got;
    }
    out += (out.empty() ? "" : "\n") + p + " size=" + std::to_string(n) + " fnv1a64=" + fnv1a64_hex(h);
  }
  return out;
}

Sweep load_sweep_file(const std::string& path) {
  // Opened without blocking (a FIFO with no writer would wait forever), then checked to be a
  // regular file of at most kMaxSweepFileBytes before a byte is read (/dev/zero never ends).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw ConfigError("sweep file", path, "a readable TOML file", std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw ConfigError("sweep file", path, "a readable TOML file (a regular file)",
                      S_ISDIR(st.st_mode)    ? "it is a directory"
                      : S_ISFIFO(st.st_mode) ? "it is a FIFO"
                      : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "it is a device"
                                                                   : "it is not a regular file");
  if (st.st_size > kMaxSweepFileBytes)
    throw ConfigError("sweep file", path, "a TOML file of at most 1 MiB",
                      "it has " + std::to_string(st.st_size) + " bytes; a sweep file lists axes, not values by the million");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError("sweep file", path, "a readable TOML file", std::string("read error: ") + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  std::string stem = std::filesystem::path(path).stem().string();
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  Sweep s = parse_sweep_impl(text, path, stem.empty() ? "sweep" : stem, &folder);
  s.source_path = path;
  return s;
}

}  // namespace dalesim
