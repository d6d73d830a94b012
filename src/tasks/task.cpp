// The task registry, task construction and parameter checking shared by every task.
#include <algorithm>
#include <cmath>
#include <string>
#include <stdexcept>

#include "dalesim/task.hpp"
#include "tasks/builtin.hpp"
#include "tasks/task_params.hpp"

namespace dalesim {

void Batch::resize(int B_, int T_, int I_, int O_) {
  B = B_;
  T = T_;
  I = I_;
  O = O_;
  loss = LossKind::mse;
  const size_t TB = static_cast<size_t>(T) * B;
  x.assign(TB * I, 0.f);
  y.assign(TB * O, 0.f);
  mask.assign(TB * O, 0.f);
  target.assign(TB, -1);
  label.assign(B, 0);
  acc_step = -1;
  acc_begin = acc_end = 0;
  acc_label.assign(TB, -1);
  condition.assign(B, -1);
}

void check_batch(const Batch& batch, int I, int O) {
  const size_t TB = static_cast<size_t>(batch.T) * batch.B;
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("batch [T=" + std::to_string(batch.T) + ", B=" + std::to_string(batch.B) + "]: " + what);
  };
  if (batch.I != I || batch.O != O)
    fail("has I=" + std::to_string(batch.I) + ", O=" + std::to_string(batch.O) + " but the model has I=" +
         std::to_string(I) + ", O=" + std::to_string(O));
  if (batch.x.size() != TB * I) fail("x is not [T, B, I]");
  if (batch.loss == LossKind::mse && (batch.y.size() != TB * O || batch.mask.size() != TB * O))
    fail("y or mask is not [T, B, O]");
  if (batch.loss == LossKind::cross_entropy && batch.target.size() != TB) fail("target is not [T, B]");
  if (batch.acc_step >= 0 && (batch.acc_step >= batch.T || batch.label.size() != static_cast<size_t>(batch.B)))
    fail("acc_step or label out of shape");
  if (batch.acc_step < 0 && !batch.acc_label.empty() && batch.acc_label.size() != TB) fail("acc_label is not [T, B]");
  if (!batch.condition.empty() && batch.condition.size() != static_cast<size_t>(batch.B)) fail("condition is not [B]");
  const bool has_accuracy = batch.acc_step >= 0 || std::any_of(batch.acc_label.begin(), batch.acc_label.end(),
                                                                [](int c) { return c >= 0; });
  if (has_accuracy && !(0 <= batch.acc_begin && batch.acc_begin < batch.acc_end && batch.acc_end <= O))
    fail("accuracy outputs [acc_begin, acc_end) not within [0, O)");
}

double Batch::loss_weight() const {
  double w = 0;
  if (loss == LossKind::mse) {
    for (float m : mask) w += m;
  } else {
    for (int c : target) w += c >= 0;
  }
  return w;
}

int Batch::n_accuracy_points() const {
  if (acc_step >= 0) return B;
  int n = 0;
  for (int c : acc_label) n += c >= 0;
  return n;
}

const char* to_string(LossKind k) { return k == LossKind::mse ? "mse" : "cross_entropy"; }
const char* to_string(Split s) { return s == Split::validation ? "validation" : "test"; }

void Task::generate_heldout(Split split, std::int64_t, int, Batch&) const {
  throw std::logic_error("task " + name() + " has no " + to_string(split) + " split");
}

const std::vector<TaskInfo>& task_registry() {
  static const std::vector<TaskInfo> registry = {
      adding_task_info(),     perceptual_dm_task_info(), context_dm_task_info(), delay_match_task_info(),
      delay_compare_task_info(), go_nogo_task_info(),    ready_set_go_task_info(), copy_task_info(),
      seqmnist_task_info(),   file_task_info()};
  return registry;
}

std::unique_ptr<Task> make_task(const TaskConfig& cfg, double dt) {
  if (cfg.name == "adding") return make_adding_task(cfg);
  if (cfg.name == "perceptual_dm") return make_perceptual_dm_task(cfg, dt);
  if (cfg.name == "context_dm") return make_context_dm_task(cfg, dt);
  if (cfg.name == "delay_match") return make_delay_match_task(cfg, dt);
  if (cfg.name == "delay_compare") return make_delay_compare_task(cfg, dt);
  if (cfg.name == "go_nogo") return make_go_nogo_task(cfg, dt);
  if (cfg.name == "ready_set_go") return make_ready_set_go_task(cfg, dt);
  if (cfg.name == "copy") return make_copy_task(cfg);
  if (cfg.name == "seqmnist") return make_seqmnist_task(cfg);
  if (cfg.name == "file") return make_file_task(cfg);
  std::string names;
  for (const TaskInfo& t : task_registry()) names += (names.empty() ? "" : ", ") + t.name;
  throw ConfigError("task.name", "\"" + cfg.name + "\"", names, "`dalesim tasks` lists them");
}

namespace {
std::string type_name(const Value& v) {
  switch (v.index()) {
    case 0: return "bool";
    case 1: return "int";
    case 2: return "float";
    case 3: return "string";
    default: return "float list";
  }
}

std::string spec_allowed(const ParamSpec& s) {
  if (!s.choices.empty()) {
    std::string out;
    for (const auto& c : s.choices) out += (out.empty() ? "" : ", ") + ("\"" + c + "\"");
    return out;
  }
  std::string t = type_name(s.default_value);
  if (std::isfinite(s.min) && std::isfinite(s.max))
    return t + " in [" + format_value(s.min) + ", " + format_value(s.max) + "]";
  if (std::isfinite(s.min)) return t + " >= " + format_value(s.min);
  if (std::isfinite(s.max)) return t + " <= " + format_value(s.max);
  return t;
}

void check_range(const ParamSpec& s, double x, const Value& v) {
  if (!(x >= s.min && x <= s.max)) throw ConfigError("task." + s.key, format_value(v), spec_allowed(s));
}
}  // namespace

TaskParams::TaskParams(const TaskConfig& cfg, const std::vector<ParamSpec>& specs) : cfg_(cfg), specs_(specs) {
  for (const auto& [key, v] : cfg.params) {
    const ParamSpec* spec = nullptr;
    for (const ParamSpec& s : specs)
      if (s.key == key) spec = &s;
    if (!spec) {
      std::string known;
      for (const ParamSpec& s : specs) known += (known.empty() ? "" : ", ") + s.key;
      throw ConfigError("task." + key, format_value(v), "parameters of task \"" + cfg.name + "\": " + known,
                        "unknown task parameter");
    }
    const Value& d = spec->default_value;
    const bool int_ok = d.index() == 1 && v.index() == 1;
    const bool dbl_ok = d.index() == 2 && (v.index() == 2 || v.index() == 1);
    const bool same = d.index() == v.index();
    if (!(int_ok || dbl_ok || same)) throw ConfigError("task." + key, format_value(v), spec_allowed(*spec),
                                                       "expected " + type_name(d) + ", got " + type_name(v));
    if (v.index() == 1) check_range(*spec, static_cast<double>(std::get<std::int64_t>(v)), v);
    if (v.index() == 2) check_range(*spec, std::get<double>(v), v);
    if (v.index() == 3 && !spec->choices.empty()) {
      bool found = false;
      for (const auto& c : spec->choices) found |= c == std::get<std::string>(v);
      if (!found) throw ConfigError("task." + key, format_value(v), spec_allowed(*spec));
    }
    if (v.index() == 4) {
      const auto& xs = std::get<std::vector<double>>(v);
      if (xs.empty()) throw ConfigError("task." + key, format_value(v), "a non-empty list");
      for (double x : xs) check_range(*spec, x, v);
    }
  }
}

const Value& TaskParams::get(const std::string& key) const {
  auto it = cfg_.params.find(key);
  if (it != cfg_.params.end()) return it->second;
  for (const ParamSpec& s : specs_)
    if (s.key == key) return s.default_value;
  throw std::logic_error("task parameter without a spec: " + key);
}

std::int64_t TaskParams::get_int(const std::string& key) const { return std::get<std::int64_t>(get(key)); }
double TaskParams::get_double(const std::string& key) const {
  const Value& v = get(key);
  return v.index() == 1 ? static_cast<double>(std::get<std::int64_t>(v)) : std::get<double>(v);
}
std::string TaskParams::get_string(const std::string& key) const { return std::get<std::string>(get(key)); }
bool TaskParams::get_bool(const std::string& key) const { return std::get<bool>(get(key)); }
std::vector<double> TaskParams::get_list(const std::string& key) const {
  return std::get<std::vector<double>>(get(key));
}

int period_steps(double ms, double dt, int min_steps, const std::string& key) {
  const int n = static_cast<int>(std::lround(ms / dt));
  if (n < min_steps)
    throw ConfigError(key, format_value(ms),
                      "at least " + std::to_string(min_steps) + " step(s) of model.dt = " + format_value(dt) + " ms");
  return n;
}

}  // namespace dalesim
