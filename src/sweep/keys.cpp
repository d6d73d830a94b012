// The registry of configuration keys (type, default, allowed values, doc) and the code that
// checks a value for a key and applies it to a ReplicaConfig.
#include "sweep/keys.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>

#include "dalesim/sweep.hpp"
#include "dalesim/task.hpp"

namespace dalesim {

namespace {

using keys::KeySource;

constexpr double inf = std::numeric_limits<double>::infinity();

enum class Kind { integer, real, text, boolean };

struct Range {
  double lo = -inf, hi = inf;
  bool lo_open = false, hi_open = false;
};
Range at_least(double lo) { return {lo, inf, false, false}; }
Range above(double lo) { return {lo, inf, true, false}; }
Range closed(double lo, double hi) { return {lo, hi, false, false}; }
Range half_open(double lo, double hi) { return {lo, hi, false, true}; }
Range open(double lo, double hi) { return {lo, hi, true, true}; }
Range open_closed(double lo, double hi) { return {lo, hi, true, false}; }

bool in_range(const Range& r, double x) {
  if (std::isnan(x)) return false;
  const bool lo_ok = r.lo_open ? x > r.lo : x >= r.lo;
  const bool hi_ok = r.hi_open ? x < r.hi : x <= r.hi;
  return lo_ok && hi_ok;
}

// Range bounds read best without a forced ".0" ("float in (0, 1)").
std::string num_text(double x) {
  if (x == std::floor(x) && std::fabs(x) < 1e15) return std::to_string(static_cast<long long>(x));
  return format_value(x);
}

std::string range_text(Kind k, const Range& r) {
  const std::string t = k == Kind::integer ? "int" : "float";
  const bool has_lo = std::isfinite(r.lo), has_hi = std::isfinite(r.hi);
  if (has_lo && has_hi)
    return t + " in " + (r.lo_open ? "(" : "[") + num_text(r.lo) + ", " + num_text(r.hi) + (r.hi_open ? ")" : "]");
  if (has_lo) return t + (r.lo_open ? " > " : " >= ") + num_text(r.lo);
  if (has_hi) return t + (r.hi_open ? " < " : " <= ") + num_text(r.hi);
  return t;
}

std::string choices_text(const std::vector<std::string>& choices) {
  std::string out;
  for (const auto& c : choices) out += (out.empty() ? "" : ", ") + ("\"" + c + "\"");
  return out;
}

// One key: its documentation plus how to check, store and read it.
struct KeyDef {
  KeySpec spec;
  Kind kind = Kind::real;
  Range range;
  std::vector<std::string> choices;  // allowed strings (enums, task names) when non-empty
  bool sweepable = true;
  std::function<void(ReplicaConfig&, const Value&)> set;
  std::function<Value(const ReplicaConfig&)> get;
};

// `field` is a generic lambda returning a reference to the struct member, so one accessor serves
// both set (on a mutable config) and get (on a const one).
#define FIELD(path) \
  [](auto& c) -> auto& { return c.path; }
template <class F>
KeyDef real_key(std::string key, Range r, std::string doc, F field) {
  KeyDef d;
  d.kind = Kind::real;
  d.range = r;
  d.spec = {std::move(key), "float", "", range_text(Kind::real, r), std::move(doc)};
  d.set = [field](ReplicaConfig& c, const Value& v) { field(c) = std::get<double>(v); };
  d.get = [field](const ReplicaConfig& c) -> Value { return static_cast<double>(field(c)); };
  return d;
}

// An integer key's range never exceeds what its field holds: the value is checked in 64 bits
// against it before the field narrows it (2^32 + 3 steps must not train 3).
template <class F>
KeyDef int_key(std::string key, Range r, std::string doc, F field) {
  using T = std::decay_t<decltype(field(std::declval<ReplicaConfig&>()))>;
  if constexpr (sizeof(T) < sizeof(std::int64_t)) {
    r.hi = std::min(r.hi, static_cast<double>(std::numeric_limits<T>::max()));
    r.lo = std::max(r.lo, static_cast<double>(std::numeric_limits<T>::lowest()));
  }
  KeyDef d;
  d.kind = Kind::integer;
  d.range = r;
  d.spec = {std::move(key), "int", "", range_text(Kind::integer, r), std::move(doc)};
  d.set = [field](ReplicaConfig& c, const Value& v) {
    using T = std::decay_t<decltype(field(c))>;
    field(c) = static_cast<T>(std::get<std::int64_t>(v));
  };
  d.get = [field](const ReplicaConfig& c) -> Value { return static_cast<std::int64_t>(field(c)); };
  return d;
}

template <class F>
KeyDef bool_key(std::string key, std::string doc, F field) {
  KeyDef d;
  d.kind = Kind::boolean;
  d.spec = {std::move(key), "bool", "", "true or false", std::move(doc)};
  d.set = [field](ReplicaConfig& c, const Value& v) { field(c) = std::get<bool>(v); };
  d.get = [field](const ReplicaConfig& c) -> Value { return static_cast<bool>(field(c)); };
  return d;
}

// Enum keys: `choices[i]` names the enum value with ordinal i.
template <class F>
KeyDef enum_key(std::string key, std::vector<std::string> choices, std::string doc, F field) {
  KeyDef d;
  d.kind = Kind::text;
  d.choices = choices;
  d.spec = {std::move(key), "string", "", choices_text(choices), std::move(doc)};
  d.set = [field, choices](ReplicaConfig& c, const Value& v) {
    using E = std::decay_t<decltype(field(c))>;
    const auto it = std::find(choices.begin(), choices.end(), std::get<std::string>(v));
    field(c) = static_cast<E>(it - choices.begin());
  };
  d.get = [field, choices](const ReplicaConfig& c) -> Value { return choices[static_cast<size_t>(field(c))]; };
  return d;
}

std::vector<KeyDef> build_key_defs() {
  std::vector<KeyDef> k;
  KeyDef name;
  name.kind = Kind::text;
  name.sweepable = false;
  name.spec = {"name", "string", "file stem, or \"sweep\"", "any string", "name of the sweep (output metadata)"};
  name.set = [](ReplicaConfig&, const Value&) {};  // belongs to the Sweep, not to a replica
  name.get = [](const ReplicaConfig&) -> Value { return std::string(); };
  k.push_back(name);

  k.push_back(int_key("seed", at_least(0), "base seed; init/data/noise seeds are derived from it", FIELD(seed)));
  k.push_back(int_key("init_seed", at_least(0), "seed of the initial weights and masks", FIELD(init_seed)));
  k.back().spec.default_text = "derive_seed(seed, \"init\")";
  k.push_back(int_key("data_seed", at_least(0), "seed of the task batches", FIELD(data_seed)));
  k.back().spec.default_text = "derive_seed(seed, \"data\")";
  k.push_back(int_key("noise_seed", at_least(0), "seed of the recurrent noise", FIELD(noise_seed)));
  k.back().spec.default_text = "derive_seed(seed, \"noise\")";

  k.push_back(enum_key("model.arch", {"free", "colei", "mix", "dann"}, "recurrent parameterisation", FIELD(model.arch)));
  k.push_back(enum_key("model.dale_part", {"colei", "dann"}, "the Dale part of arch mix: column E/I or recurrent DANN",
                       FIELD(model.dale_part)));
  k.push_back(int_key("model.dann_n_i", closed(0, 4096),
                      "inhibitory interneurons of a DANN recurrence (0 = ceil(n_units / ei_ratio) when ei_ratio > 0, else max(1, n_units / 10))", FIELD(model.dann_n_i)));
  k.push_back(int_key("model.dann_n_i_in", closed(0, 4096),
                      "inhibitory interneurons of the DANN input layer of arch dann (0: as model.dann_n_i)",
                      FIELD(model.dann_n_i_in)));
  k.push_back(int_key("model.n_units", closed(2, 4096), "number of recurrent units N", FIELD(model.n_units)));
  k.push_back(real_key("model.e_fraction", closed(0, 1),
                       "fraction of excitatory units, n_exc = round(e_fraction * n_units); colei/mix need "
                       "0 < e_fraction < 1 with n_exc >= 1 and n_inh >= 1",
                       FIELD(model.e_fraction)));
  k.push_back(real_key("model.tau_e", above(0), "time constant of excitatory units (ms)", FIELD(model.tau_e)));
  k.push_back(real_key("model.tau_i", above(0), "time constant of inhibitory units (ms)", FIELD(model.tau_i)));
  k.push_back(real_key("model.dt", above(0), "Euler step (ms); must be <= min(tau_e, tau_i)", FIELD(model.dt)));
  k.back().spec.allowed = "float > 0 and <= min(model.tau_e, model.tau_i)";
  k.push_back(enum_key("model.phi", {"relu", "tanh", "softplus", "sigmoid"}, "nonlinearity", FIELD(model.phi)));
  k.push_back(real_key("model.sigma_rec", closed(0, 1000), "recurrent noise scale (0 = off)", FIELD(model.sigma_rec)));
  k.push_back(real_key("model.p_ee", closed(1e-6, 1), "connection probability E -> E", FIELD(model.p_ee)));
  k.push_back(real_key("model.p_ei", closed(1e-6, 1), "connection probability I -> E", FIELD(model.p_ei)));
  k.push_back(real_key("model.p_ie", closed(1e-6, 1), "connection probability E -> I", FIELD(model.p_ie)));
  k.push_back(real_key("model.p_ii", closed(1e-6, 1), "connection probability I -> I", FIELD(model.p_ii)));
  k.push_back(bool_key("model.autapses", "allow self-connections", FIELD(model.autapses)));
  k.push_back(enum_key("model.readout_from", {"all", "exc"}, "units the readout sees", FIELD(model.readout_from)));
  k.push_back(enum_key("model.input_to", {"all", "exc"}, "units that receive input", FIELD(model.input_to)));
  k.push_back(enum_key("model.input_sign", {"free", "positive"}, "sign constraint on W_in", FIELD(model.input_sign)));
  k.push_back(real_key("model.ei_ratio", closed(0, 1000),
                       "E:I ratio r (> 0 replaces e_fraction): n_inh = ceil(n_units / (r + 1)), as published",
                       FIELD(model.ei_ratio)));
  k.push_back(enum_key("model.free_init", {"gaussian", "orthogonal", "uniform", "lognormal", "lowrank"},
                       "init of W_free (see docs/model.md)", FIELD(model.free_init)));
  k.push_back(real_key("model.g", open_closed(0, 1000),
                       "gain of W_free at init: N(0, g^2/N), g x orthogonal, U(-g/sqrt(N), g/sqrt(N)), log-normal "
                       "std g/sqrt(N), low-rank from N(0, g^2/N) (published: 1.25)",
                       FIELD(model.g)));
  k.push_back(int_key("model.rank", at_least(1), "rank of the low-rank init (free_init = \"lowrank\"), <= n_units",
                      FIELD(model.rank)));
  k.push_back(real_key("model.lognormal_ratio", closed(1e-3, 1e3), "mean/std ratio of log-normal magnitudes",
                       FIELD(model.lognormal_ratio)));
  k.push_back(enum_key("model.lognormal_signs", {"dale", "random"},
                       "signs of log-normal weights: by presynaptic type or Rademacher", FIELD(model.lognormal_signs)));
  k.push_back(enum_key("model.spectrum_from", {"none", "gaussian", "orthogonal", "uniform", "lognormal", "lowrank", "colei"},
                       "spectrum transplant: W_free keeps its singular vectors and takes the singular values of an "
                       "independent draw of this family",
                       FIELD(model.spectrum_from)));
  k.push_back(real_key("model.rho", open_closed(0, 1000), "spectral radius of W_dale at init", FIELD(model.rho)));
  k.push_back(real_key("model.g_in", closed(0, 1000), "scale of W_in at init, N(0, g_in^2/I)", FIELD(model.g_in)));
  k.push_back(real_key("model.alpha_init", closed(0, 1),
                       "initial alpha of arch mix (strictly inside (0, 1) with alpha_form sigmoid)",
                       FIELD(model.alpha_init)));
  k.push_back(enum_key("model.alpha_per", {"network", "neuron"},
                       "arch mix: one alpha per network, or one per presynaptic neuron (column j mixes with alpha_j)",
                       FIELD(model.alpha_per)));
  k.push_back(enum_key("model.alpha_form", {"sigmoid", "clamp"},
                       "arch mix: alpha = sigmoid(a), or alpha itself trained and projected onto [0, 1]",
                       FIELD(model.alpha_form)));

  KeyDef task_name;
  task_name.kind = Kind::text;
  for (const TaskInfo& t : task_registry()) task_name.choices.push_back(t.name);
  task_name.spec = {"task.name", "string", "", choices_text(task_name.choices), "the task (see task_registry())"};
  task_name.set = [](ReplicaConfig& c, const Value& v) { c.task.name = std::get<std::string>(v); };
  task_name.get = [](const ReplicaConfig& c) -> Value { return c.task.name; };
  k.push_back(task_name);
  k.push_back(int_key("task.batch", closed(1, 65536), "trials per training step", FIELD(task.batch)));

  k.push_back(enum_key("train.optimizer", {"sgd", "adam"}, "optimiser", FIELD(train.optimizer)));
  k.push_back(real_key("train.lr", open_closed(0, 1e6), "learning rate", FIELD(train.lr)));
  k.push_back(real_key("train.lr_alpha", closed(0, 1e6), "learning rate of alpha (arch mix; 0: alpha fixed, the fixed-alpha scan)",
                       FIELD(train.lr_alpha)));
  k.back().spec.default_text = "same as train.lr";
  k.push_back(real_key("train.momentum", half_open(0, 1), "SGD momentum", FIELD(train.momentum)));
  k.push_back(real_key("train.beta1", half_open(0, 1), "Adam beta1", FIELD(train.beta1)));
  k.push_back(real_key("train.beta2", half_open(0, 1), "Adam beta2", FIELD(train.beta2)));
  k.push_back(real_key("train.eps", open_closed(0, 1), "Adam epsilon", FIELD(train.eps)));
  k.push_back(real_key("train.clip", at_least(0), "gradient-norm clip per replica (0 = off)", FIELD(train.clip)));
  k.push_back(int_key("train.n_steps", at_least(1), "training steps", FIELD(train.n_steps)));
  k.push_back(int_key("train.log_every", at_least(1), "steps between history rows", FIELD(train.log_every)));
  k.push_back(
      int_key("train.checkpoint_every", at_least(1), "steps between checkpoints", FIELD(train.checkpoint_every)));
  k.push_back(enum_key("train.dale", {"clamp", "abs", "relu"},
                       "how W_dale keeps its signs: projection (clamp), or sign x |raw| (abs), sign x relu(raw) (relu)",
                       FIELD(train.dale)));
  k.push_back(enum_key("train.precision", {"float", "double"}, "arithmetic precision", FIELD(train.precision)));
  k.push_back(enum_key("train.kernel", {"auto", "v1", "v2", "v3"},
                       "CUDA training kernel: chosen from the bucket's shape (auto), per-step products (v1), "
                       "persistent recurrent loops with W_rec in shared memory (v2), clusters (v3, not built); "
                       "a forced kernel that cannot take the shape is an error; ignored by the CPU backend "
                       "(see docs/cuda.md)",
                       FIELD(train.kernel)));
  k.push_back(enum_key("train.rule", {"gd", "eg", "gd_sign", "md"},
                       "learning rule of the weights: the optimiser (gd), exponentiated gradient (eg), sign-preserving "
                       "gradient descent (gd_sign), p-norm mirror descent (md); biases and alpha always use the optimiser",
                       FIELD(train.rule)));
  k.push_back(real_key("train.md_p", above(1), "p of the p-norm potential of rule md (2 = gradient descent)",
                       FIELD(train.md_p)));
  k.push_back(bool_key("train.eg_split_bias",
                       "rule eg: biases split into b+ >= 0 and b- <= 0, each trained by EG (false: the optimiser)",
                       FIELD(train.eg_split_bias)));
  k.push_back(real_key("train.weight_decay", closed(0, 1000), "weight decay: + lambda w (gd, gd_sign, md), + lambda sign(w) (eg)",
                       FIELD(train.weight_decay)));
  k.push_back(real_key("train.l1_in", closed(0, 1000), "cost: coefficient x mean |W_in| (effective)", FIELD(train.l1_in)));
  k.push_back(real_key("train.l2_in", closed(0, 1000), "cost: coefficient x mean W_in^2 (effective)", FIELD(train.l2_in)));
  k.push_back(real_key("train.l1_rec", closed(0, 1000), "cost: coefficient x mean |W_rec| (effective)", FIELD(train.l1_rec)));
  k.push_back(real_key("train.l2_rec", closed(0, 1000), "cost: coefficient x mean W_rec^2 (effective)", FIELD(train.l2_rec)));
  k.push_back(real_key("train.l1_out", closed(0, 1000), "cost: coefficient x mean |W_out| (effective)", FIELD(train.l1_out)));
  k.push_back(real_key("train.l2_out", closed(0, 1000), "cost: coefficient x mean W_out^2 (effective)", FIELD(train.l2_out)));
  k.push_back(real_key("train.l1_free", closed(0, 1000),
                       "cost: coefficient x mean |(1 - alpha_j) W_free| (the free part as it enters W_rec)",
                       FIELD(train.l1_free)));
  k.push_back(real_key("train.l2_free", closed(0, 1000),
                       "cost: coefficient x mean ((1 - alpha_j) W_free)^2 (the free part as it enters W_rec)",
                       FIELD(train.l2_free)));
  k.push_back(real_key("train.l2_firing_rate", closed(0, 1000), "cost: coefficient x mean phi(v)^2 (metabolic)",
                       FIELD(train.l2_firing_rate)));
  k.push_back(int_key("train.prune_at", at_least(-1),
                      "step at which the smallest recurrent weights are first pruned (-1: never)", FIELD(train.prune_at)));
  k.push_back(int_key("train.prune_every", at_least(0), "steps between later prunings (0: prune once)",
                      FIELD(train.prune_every)));
  k.push_back(real_key("train.prune_fraction", open(0, 1),
                       "fraction of the present recurrent connections removed at each pruning",
                       FIELD(train.prune_fraction)));

  const ReplicaConfig defaults;
  for (KeyDef& d : k)
    if (d.spec.default_text.empty()) d.spec.default_text = format_value(d.get(defaults));
  return k;
}
#undef FIELD

const std::vector<KeyDef>& key_defs() {
  static const std::vector<KeyDef> defs = build_key_defs();
  return defs;
}

const KeyDef* find_def(const std::string& key) {
  for (const KeyDef& d : key_defs())
    if (d.spec.key == key) return &d;
  return nullptr;
}

std::string type_name(const Value& v) {
  static const char* names[] = {"bool", "int", "float", "string", "list"};
  return names[v.index()];
}

std::string hint(const KeySource& src, const std::string& extra) {
  if (src.where.empty()) return extra;
  return extra.empty() ? src.where : src.where + ": " + extra;
}

// How the user wrote `key`; a key left at its default is named as is.
KeySource source_of(const keys::SourceMap& given, const std::string& key) {
  auto it = given.find(key);
  return it != given.end() ? it->second : KeySource{key, ""};
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string last_segment(const std::string& key) { return key.substr(key.rfind('.') + 1); }

// Checks a task parameter against its spec; returns it normalised (int -> float where a float is expected).
Value check_param(const ParamSpec& spec, const Value& v, const KeySource& src) {
  const Value& d = spec.default_value;
  Value out = v;
  if (d.index() == 2 && v.index() == 1) out = static_cast<double>(std::get<std::int64_t>(v));
  std::string allowed = type_name(d);
  if (!spec.choices.empty())
    allowed = choices_text(spec.choices);
  else if (std::isfinite(spec.min) || std::isfinite(spec.max))
    allowed = range_text(d.index() == 1 ? Kind::integer : Kind::real, {spec.min, spec.max, false, false});
  if (out.index() != d.index())
    throw ConfigError(src.written, format_value(v), allowed,
                      hint(src, "expected " + type_name(d) + ", got " + type_name(v)));
  const Range r{spec.min, spec.max, false, false};
  bool ok = true;
  if (out.index() == 1) ok = in_range(r, static_cast<double>(std::get<std::int64_t>(out)));
  if (out.index() == 2) ok = in_range(r, std::get<double>(out));
  if (out.index() == 3 && !spec.choices.empty())
    ok = std::count(spec.choices.begin(), spec.choices.end(), std::get<std::string>(out)) > 0;
  if (out.index() == 4) {
    const auto& xs = std::get<std::vector<double>>(out);
    ok = !xs.empty() && std::all_of(xs.begin(), xs.end(), [&](double x) { return in_range(r, x); });
    if (xs.empty()) allowed = "a non-empty " + allowed;
  }
  if (!ok) throw ConfigError(src.written, format_value(v), allowed, hint(src, ""));
  return out;
}

}  // namespace

const std::vector<KeySpec>& config_keys() {
  static const std::vector<KeySpec> specs = [] {
    std::vector<KeySpec> out;
    for (const KeyDef& d : key_defs()) out.push_back(d.spec);
    return out;
  }();
  return specs;
}

namespace keys {

bool is_config_key(const std::string& key) { return find_def(key) != nullptr; }

bool is_task_param(const std::string& key) {
  return key.size() > 5 && key.compare(0, 5, "task.") == 0 && !is_config_key(key);
}

bool is_sweepable(const std::string& key) {
  const KeyDef* d = find_def(key);
  return d ? d->sweepable : is_task_param(key);
}

std::string closest_key(const std::string& key) {
  std::vector<std::string> known;
  for (const KeyDef& d : key_defs()) known.push_back(d.spec.key);
  for (const TaskInfo& t : task_registry())
    for (const ParamSpec& p : t.params) known.push_back("task." + p.key);
  // A right name in the wrong section ("train.n_units") is the likeliest slip.
  for (const std::string& k : known)
    if (last_segment(k) == last_segment(key)) return k;
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const std::string& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best_d <= std::max<size_t>(2, key.size() / 3) ? best : "";
}

Value check_value(const std::string& key, const Value& v, const KeySource& src) {
  if (is_task_param(key)) {
    // The replica's task decides the rest (resolve_replica); promote ints where some task wants a float.
    if (v.index() == 1)
      for (const TaskInfo& t : task_registry())
        for (const ParamSpec& p : t.params)
          if ("task." + p.key == key && p.default_value.index() == 2)
            return static_cast<double>(std::get<std::int64_t>(v));
    return v;
  }
  const KeyDef* d = find_def(key);
  if (!d) {
    const std::string near = closest_key(key);
    throw ConfigError(src.written, format_value(v), "a key listed in docs/sweep-format.md",
                      hint(src, near.empty() ? "unknown key" : "unknown key; did you mean " + near + "?"));
  }
  auto wrong_type = [&]() {
    std::string extra = "expected " + d->spec.type + ", got " + type_name(v);
    std::string shown = format_value(v);
    if (v.index() == 4) {
      // A list as written: whole numbers without a forced ".0" ([8], not [8.0]).
      shown = "[";
      for (double x : std::get<std::vector<double>>(v)) shown += (shown.size() > 1 ? ", " : "") + num_text(x);
      shown += "]";
      extra += src.written.rfind("sweep.", 0) == 0
                   ? "; a grid or zip axis lists single values: nested lists are not allowed"
                   : "; to sweep a key, list its values under [sweep.grid]";
    }
    return ConfigError(src.written, shown, d->spec.allowed, hint(src, extra));
  };
  switch (d->kind) {
    case Kind::boolean:
      if (v.index() != 0) throw wrong_type();
      return v;
    case Kind::text:
      if (v.index() != 3) throw wrong_type();
      if (!d->choices.empty() &&
          std::find(d->choices.begin(), d->choices.end(), std::get<std::string>(v)) == d->choices.end())
        throw ConfigError(src.written, format_value(v), d->spec.allowed,
                          hint(src, key == "task.name" ? "unknown task" : ""));
      return v;
    case Kind::integer: {
      if (v.index() != 1) throw wrong_type();
      if (!in_range(d->range, static_cast<double>(std::get<std::int64_t>(v))))
        throw ConfigError(src.written, format_value(v), d->spec.allowed, hint(src, ""));
      return v;
    }
    case Kind::real: {
      Value out = v;
      if (v.index() == 1) out = static_cast<double>(std::get<std::int64_t>(v));
      if (out.index() != 2) throw wrong_type();
      if (!in_range(d->range, std::get<double>(out)))
        throw ConfigError(src.written, format_value(v), d->spec.allowed, hint(src, ""));
      return out;
    }
  }
  return v;
}

void set_value(ReplicaConfig& cfg, const std::string& key, const Value& v) {
  if (is_task_param(key)) {
    cfg.task.params[key.substr(5)] = v;
    return;
  }
  find_def(key)->set(cfg, v);
}

Value get_value(const ReplicaConfig& cfg, const std::string& key) {
  if (is_task_param(key)) return cfg.task.params.at(key.substr(5));
  return find_def(key)->get(cfg);
}

void resolve_replica(ReplicaConfig& cfg, const SourceMap& given, std::set<std::string>& checked) {
  if (!given.count("init_seed")) cfg.init_seed = derive_seed(cfg.seed, "init");
  if (!given.count("data_seed")) cfg.data_seed = derive_seed(cfg.seed, "data");
  if (!given.count("noise_seed")) cfg.noise_seed = derive_seed(cfg.seed, "noise");

  const ModelConfig& m = cfg.model;
  const bool ei_split = m.arch != Arch::free && !m.dann_part();  // colei, or mix with a ColEI part
  if (ei_split && m.ei_ratio > 0 && !(m.n_exc() >= 1 && m.n_inh() >= 1)) {
    const KeySource src = source_of(given, "model.ei_ratio");
    throw ConfigError(src.written, format_value(m.ei_ratio), "a ratio giving n_exc >= 1 and n_inh >= 1",
                      hint(src, "n_units = " + std::to_string(m.n_units) + " gives n_exc = " +
                                    std::to_string(m.n_exc()) + ", n_inh = " + std::to_string(m.n_inh())));
  }
  if (ei_split && m.ei_ratio <= 0 &&
      !(m.e_fraction > 0 && m.e_fraction < 1 && m.n_exc() >= 1 && m.n_inh() >= 1)) {
    const KeySource src = source_of(given, "model.e_fraction");
    throw ConfigError(
        src.written, format_value(m.e_fraction),
        std::string("0 < e_fraction < 1 with n_exc >= 1 and n_inh >= 1 for arch \"") + to_string(m.arch) + "\"",
        hint(src, "n_units = " + std::to_string(m.n_units) + " gives n_exc = " + std::to_string(m.n_exc()) +
                      ", n_inh = " + std::to_string(m.n_inh())));
  }
  // A DANN pool of ceil(n_units / ei_ratio) interneurons: computed in double, so a tiny ratio is
  // refused here instead of overflowing the count.
  if (m.dann_part() && m.ei_ratio > 0 && m.dann_n_i <= 0 && std::ceil(m.n_units / m.ei_ratio) > 4096) {
    const KeySource src = source_of(given, "model.ei_ratio");
    throw ConfigError(src.written, format_value(m.ei_ratio),
                      "a ratio giving at most 4096 DANN interneurons, ceil(n_units / ei_ratio)",
                      hint(src, "n_units = " + std::to_string(m.n_units) + " gives " +
                                    num_text(std::ceil(m.n_units / m.ei_ratio))));
  }
  if (m.free_init == FreeInit::lowrank && m.rank > m.n_units) {
    const KeySource src = source_of(given, "model.rank");
    throw ConfigError(src.written, std::to_string(m.rank), "1 <= rank <= model.n_units = " + std::to_string(m.n_units),
                      hint(src, ""));
  }
  if (m.alpha_form == AlphaForm::sigmoid && !(m.alpha_init > 0 && m.alpha_init < 1)) {
    const KeySource src = source_of(given, "model.alpha_init");
    throw ConfigError(src.written, format_value(m.alpha_init),
                      "float in (0, 1) with model.alpha_form = \"sigmoid\" (alpha = sigmoid(a) never reaches 0 or 1)",
                      hint(src, "use model.alpha_form = \"clamp\" to start at 0 or 1"));
  }
  const TrainConfig& tc = cfg.train;
  // The reparameterisation and pruning act on the ColEI matrix W_dale; a DANN part's inhibition is
  // a product of non-negative factors, outside both.
  if (tc.dale != DaleMode::clamp && m.dann_part()) {
    const KeySource src = source_of(given, "train.dale");
    throw ConfigError(src.written, format_value(std::string(to_string(tc.dale))),
                      "\"clamp\" for a DANN Dale part (arch dann, or mix with dale_part = \"dann\")",
                      hint(src, "abs and relu reparameterise the ColEI matrix W_dale"));
  }
  if (tc.prunes() && m.dann_part()) {
    const KeySource src = source_of(given, "train.prune_at");
    throw ConfigError(src.written, std::to_string(tc.prune_at),
                      "-1 (no pruning) for a DANN Dale part (arch dann, or mix with dale_part = \"dann\")",
                      hint(src, "pruning removes entries of W_dale / W_free; a DANN part's W_ei W_ie has none"));
  }
  if (tc.prunes() && tc.prune_at >= tc.n_steps) {
    const KeySource src = source_of(given, "train.prune_at");
    throw ConfigError(src.written, std::to_string(tc.prune_at),
                      "-1 (never) or a step below train.n_steps = " + std::to_string(tc.n_steps), hint(src, ""));
  }
  if (m.dt > std::min(m.tau_e, m.tau_i)) {
    // Blame what was written: a time constant set below the (default) step, else the step.
    const std::string tau_key = m.tau_e <= m.tau_i ? "model.tau_e" : "model.tau_i";
    if (!given.count("model.dt") && given.count(tau_key)) {
      const KeySource src = source_of(given, tau_key);
      throw ConfigError(src.written, format_value(std::min(m.tau_e, m.tau_i)),
                        ">= model.dt = " + format_value(m.dt) + " (the Euler step; time constants are in ms)",
                        hint(src, ""));
    }
    const KeySource src = source_of(given, "model.dt");
    throw ConfigError(src.written, format_value(m.dt),
                      "<= min(model.tau_e, model.tau_i) = " + format_value(std::min(m.tau_e, m.tau_i)), hint(src, ""));
  }

  const TaskInfo* info = nullptr;
  for (const TaskInfo& t : task_registry())
    if (t.name == cfg.task.name) info = &t;
  if (!info) {  // unreachable through check_value, but keep the message if the registry changes
    const KeySource src = source_of(given, "task.name");
    throw ConfigError(src.written, format_value(cfg.task.name), find_def("task.name")->spec.allowed,
                      hint(src, "unknown task"));
  }
  for (auto& [name, value] : cfg.task.params) {
    const KeySource src = source_of(given, "task." + name);
    const ParamSpec* spec = nullptr;
    for (const ParamSpec& p : info->params)
      if (p.key == name) spec = &p;
    if (!spec) {
      std::string known;
      for (const ParamSpec& p : info->params) known += (known.empty() ? "" : ", ") + p.key;
      std::string near;
      for (const ParamSpec& p : info->params)
        if (edit_distance(name, p.key) <= std::max<size_t>(2, name.size() / 3)) near = "task." + p.key;
      throw ConfigError(src.written, format_value(value), "parameters of task \"" + info->name + "\": " + known,
                        hint(src, "unknown task parameter" + (near.empty() ? "" : "; did you mean " + near + "?")));
    }
    value = check_param(*spec, value, src);
  }
  for (const ParamSpec& p : info->params) cfg.task.params.emplace(p.key, p.default_value);

  // Building a task is the task's own final check; do it once per distinct task config.
  std::string sig = cfg.task.name + "|" + std::to_string(cfg.task.batch) + "|" + format_value(m.dt);
  for (const auto& [name, value] : cfg.task.params) sig += "|" + name + "=" + format_value(value);
  if (checked.insert(sig).second) make_task(cfg.task, m.dt);
}

}  // namespace keys
}  // namespace dalesim
