// `dalesim merge`: joins shard files of one sweep into one file with the layout of a single-process
// run. The merged file is written by the ordinary HDF5 writer, fed with the shards' values, so the
// two layouts cannot drift apart.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "dalesim/history.hpp"
#include "dalesim/model.hpp"
#include "dalesim/sweep.hpp"
#include "io/h5.hpp"
#include "io/merge.hpp"
#include "io/run_files.hpp"
#include "sweep/shard.hpp"

namespace dalesim {

namespace {

// Every [step, replica] metric the writer records, and where it lives in the host structs. A shard
// holding a metric not listed here is refused rather than merged without it.
const std::pair<const char*, double Diagnostics::*> kCheckpointMembers[] = {
    {"spectral_radius", &Diagnostics::spectral_radius},
    {"density", &Diagnostics::density},
    {"act_corr_e", &Diagnostics::act_corr_e},
    {"act_corr_i", &Diagnostics::act_corr_i},
    {"act_sparseness", &Diagnostics::act_sparseness},
    {"act_ei_balance", &Diagnostics::act_ei_balance},
    {"svd_entropy", &Diagnostics::svd_entropy},
    {"effective_rank", &Diagnostics::effective_rank},
    {"rel_weight_change", &Diagnostics::rel_weight_change},
    {"logw_e_mean", &Diagnostics::logw_e_mean},
    {"logw_e_std", &Diagnostics::logw_e_std},
    {"logw_e_skew", &Diagnostics::logw_e_skew},
    {"logw_i_mean", &Diagnostics::logw_i_mean},
    {"logw_i_std", &Diagnostics::logw_i_std},
    {"logw_i_skew", &Diagnostics::logw_i_skew},
    {"validation_loss", &Diagnostics::validation_loss},
    {"validation_accuracy", &Diagnostics::validation_accuracy},
    {"test_loss", &Diagnostics::test_loss},
    {"test_accuracy", &Diagnostics::test_accuracy},
    {"eval_loss", &Diagnostics::eval_loss},
    {"eval_accuracy", &Diagnostics::eval_accuracy},
    {"rep_alignment", &Diagnostics::rep_alignment},
    {"sign_similarity", &Diagnostics::sign_similarity},
    {"units_unchanged", &Diagnostics::units_unchanged},
    {"geometry_p1_5", &Diagnostics::geometry_p1_5},
    {"geometry_p2", &Diagnostics::geometry_p2},
    {"geometry_p3", &Diagnostics::geometry_p3},
    {"geometry_negentropy", &Diagnostics::geometry_negentropy},
};

h5::File open_input(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(path + " is a directory, not a shard file");
  if (!fs::exists(path, ec)) throw InputError("no such file: " + path);
  if (!fs::is_regular_file(path, ec)) throw InputError(path + " is not a regular file");
  h5::silence_errors();
  h5::File file;
  try {
    file = h5::File::open_read_only(path);
  } catch (const std::runtime_error& e) {
    throw InputError(path + ": not an HDF5 file or truncated (" + e.what() + ")");
  }
  if (!file.has_attribute("format") || file.string_attribute("format") != "dalesim")
    throw InputError(path + ": not a dalesim output file (no root attribute format = \"dalesim\")");
  return file;
}

std::string attr_or(const h5::Object& obj, const char* name, const std::string& fallback = "") {
  return obj.has_attribute(name) ? obj.string_attribute(name) : fallback;
}

RunFileIdentity identity_of(const h5::File& file) {
  RunFileIdentity id;
  id.status = attr_or(file, "status");
  id.sweep_name = attr_or(file, "sweep_name");
  id.sweep_text = attr_or(file, "sweep_text");
  id.sweep_hash = attr_or(file, "sweep_hash", sweep_hash(id.sweep_text));
  id.data_files = attr_or(file, "data_files");
  id.n_replicas = file.has_attribute("n_replicas") ? static_cast<int>(file.int_attribute("n_replicas")) : 0;
  if (file.has_attribute("shard_count")) {
    id.shard_count = static_cast<int>(file.int_attribute("shard_count"));
    id.shard_index = static_cast<int>(file.int_attribute("shard_index"));
  }
  return id;
}

std::string shard_name(const RunFileIdentity& id) {
  return id.shard_count > 0 ? "shard " + std::to_string(id.shard_index) + "/" + std::to_string(id.shard_count)
                            : "a whole run";
}

// One input: its file, identity, replica ids and where each lands in the merged file.
struct Input {
  std::string path;
  h5::File file;
  RunFileIdentity id;
  std::vector<std::int64_t> ids;     // /replicas/id
  std::vector<std::size_t> target;   // position in the merged replica axis, per entry of ids
};

// The 2-D metrics of `group` must be exactly the known ones.
template <class Members>
void check_known_metrics(const Input& in, const char* group_name, const Members& members) {
  const h5::Group group = in.file.open_group(group_name);
  std::set<std::string> known;
  for (const auto& [name, member] : members) known.insert(name);
  for (const std::string& name : group.child_names()) {
    if (!group.is_dataset(name) || group.open_dataset(name).dims().size() != 2) continue;
    if (!known.count(name))
      throw InputError(in.path + ": /" + group_name + "/" + name +
                       " is a metric this dalesim does not know; merge with the dalesim that wrote the file");
  }
}

// The names of a /replicas/conditions entry ("a; b; c"; empty: none).
std::vector<std::string> split_conditions(const std::string& joined) {
  std::vector<std::string> names;
  for (std::size_t at = 0; !joined.empty() && at <= joined.size();) {
    const std::size_t end = std::min(joined.find("; ", at), joined.size());
    names.push_back(joined.substr(at, end - at));
    at = end + 2;
  }
  return names;
}

ReplicaStatus parse_status(const std::string& s, const std::string& path) {
  if (s == "complete") return ReplicaStatus::complete;
  if (s == "diverged") return ReplicaStatus::diverged;
  if (s == "running") return ReplicaStatus::running;
  throw InputError(path + ": /replicas/status holds \"" + s + "\", not running, complete or diverged");
}

std::string join_unique(const std::vector<std::string>& values) {
  std::vector<std::string> seen;
  for (const auto& v : values)
    if (std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
  std::string out;
  for (const auto& v : seen) out += (out.empty() ? "" : "; ") + v;
  return out;
}

}  // namespace

RunFileIdentity read_run_identity(const std::string& path) { return identity_of(open_input(path)); }

MergeResult merge_run_files(const std::vector<std::string>& inputs, const std::string& output,
                            const std::string& command_line, bool overwrite) {
  if (inputs.empty()) throw InputError("merge: no shard files given");
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<Input> in(inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (fs::exists(output, ec) && fs::equivalent(inputs[k], output, ec))
      throw ConfigError("--output", output, "a file that is not one of the shards");
    in[k].path = inputs[k];
    in[k].file = open_input(inputs[k]);
    in[k].id = identity_of(in[k].file);
    if (in[k].id.status != "complete")
      throw InputError(inputs[k] + ": " + shard_name(in[k].id) + " is incomplete (status \"" + in[k].id.status +
                       "\"): its run did not finish; run that shard again before merging");
    if (in[k].id.sweep_hash != in[0].id.sweep_hash)
      throw InputError(inputs[k] + " and " + inputs[0] + " are of different sweeps (\"" + in[k].id.sweep_name +
                       "\", sweep_hash " + in[k].id.sweep_hash + " vs \"" + in[0].id.sweep_name + "\", " +
                       in[0].id.sweep_hash + "); merge only shards of one sweep file");
    if (in[k].id.shard_count != in[0].id.shard_count)
      throw InputError(inputs[k] + " (" + shard_name(in[k].id) + ") and " + inputs[0] + " (" + shard_name(in[0].id) +
                       ") split the sweep differently; merge the shards of one --shard K/N split");
    in[k].ids = in[k].file.open_group("replicas").open_dataset("id").read_int64s();
    check_known_metrics(in[k], "history", kStepMetricFields);
    check_known_metrics(in[k], "checkpoints", kCheckpointMembers);
  }

  // The whole sweep, from the text the shards carry: the configuration of every replica.
  Sweep sweep = parse_sweep(in[0].id.sweep_text, inputs[0] + " (its sweep_text)");
  sweep.name = in[0].id.sweep_name;
  sweep.source_text = in[0].id.sweep_text;
  sweep.resolved_text = attr_or(in[0].file, "resolved_config", sweep.resolved_text);
  std::sort(sweep.replicas.begin(), sweep.replicas.end(),
            [](const ReplicaConfig& a, const ReplicaConfig& b) { return a.id < b.id; });
  const std::size_t R = sweep.replicas.size();
  std::map<std::int64_t, std::size_t> position;  // global id -> merged replica axis
  for (std::size_t r = 0; r < R; ++r) position[sweep.replicas[r].id] = r;

  std::vector<int> owner(R, -1);
  for (std::size_t k = 0; k < in.size(); ++k) {
    for (std::int64_t id : in[k].ids) {
      auto it = position.find(id);
      if (it == position.end())
        throw InputError(inputs[k] + ": replica " + std::to_string(id) + " is not in the sweep (" +
                         std::to_string(R) + " replicas)");
      if (owner[it->second] >= 0)
        throw InputError("replica " + std::to_string(id) + " is in both " + inputs[owner[it->second]] + " and " +
                         inputs[k] + ": the shards overlap (the same shard given twice?)");
      owner[it->second] = static_cast<int>(k);
      in[k].target.push_back(it->second);
    }
  }
  std::string missing;
  int n_missing = 0;
  for (std::size_t r = 0; r < R; ++r)
    if (owner[r] < 0 && n_missing++ < 10) missing += (missing.empty() ? "" : ", ") + std::to_string(sweep.replicas[r].id);
  if (n_missing) {
    std::string which;
    if (in[0].id.shard_count > 0) {
      std::set<int> have;
      for (const Input& x : in) have.insert(x.id.shard_index);
      for (int s = 0; s < in[0].id.shard_count; ++s)
        if (!have.count(s)) which += (which.empty() ? "" : ", ") + std::to_string(s);
      which = "; missing shard(s) " + which + " of " + std::to_string(in[0].id.shard_count);
    }
    throw InputError(std::to_string(n_missing) + " of " + std::to_string(R) + " replicas are in none of the files (" +
                     missing + (n_missing > 10 ? ", ..." : "") + ")" + which);
  }

  // Steps: every shard logged and checkpointed at the same steps.
  auto steps_of = [](const Input& x, const char* group) {
    return x.file.open_group(group).open_dataset("step").read_int64s();
  };
  const std::vector<std::int64_t> history_step = steps_of(in[0], "history"), ckpt_step = steps_of(in[0], "checkpoints");
  for (const Input& x : in)
    if (steps_of(x, "history") != history_step || steps_of(x, "checkpoints") != ckpt_step)
      throw InputError(x.path + " and " + in[0].path + " were logged or checkpointed at different steps; "
                       "their rows cannot be aligned");

  // The /replicas facts that come from the task rather than the config.
  std::vector<ReplicaRow> rows(R);
  std::vector<ReplicaStatus> status(R);
  std::vector<std::int64_t> diverged_step(R);
  std::vector<std::string> backends, devices;
  for (const Input& x : in) {
    const h5::Group g = x.file.open_group("replicas");
    const auto n_in = g.open_dataset("n_inputs").read_int64s(), n_out = g.open_dataset("n_outputs").read_int64s();
    const auto T = g.open_dataset("trial_steps").read_int64s(), div = g.open_dataset("diverged_step").read_int64s();
    const auto base = g.open_dataset("baseline_loss").read_doubles();
    const auto chance = g.open_dataset("chance_accuracy").read_doubles();
    const auto st = g.open_dataset("status").read_strings();
    const auto conditions =
        g.is_dataset("conditions") ? g.open_dataset("conditions").read_strings() : std::vector<std::string>(x.target.size());
    const auto kernel_used =
        g.is_dataset("kernel_used") ? g.open_dataset("kernel_used").read_strings() : std::vector<std::string>(x.target.size());
    for (std::size_t m = 0; m < x.target.size(); ++m) {
      const std::size_t r = x.target[m];
      rows[r] = ReplicaRow{&sweep.replicas[r], static_cast<int>(n_in[m]), static_cast<int>(n_out[m]),
                           static_cast<int>(T[m]), base[m], chance[m], split_conditions(conditions[m]),
                           kernel_used[m]};
      status[r] = parse_status(st[m], x.path);
      diverged_step[r] = div[m];
    }
    backends.push_back(attr_or(x.file, "backend"));
    devices.push_back(attr_or(x.file, "device"));
  }

  RunInfo info;
  info.command_line = command_line;
  info.backend = join_unique(backends);
  info.device = join_unique(devices);
  info.git_hash = attr_or(in[0].file, "git_hash");
  info.engine_version = attr_or(in[0].file, "dalesim_version");
  std::unique_ptr<HistoryWriter> writer = create_hdf5_writer(output, sweep, rows, info, overwrite, /*two_copies=*/false);
  try {
    // History: each shard's [S, R_k] tables scattered into rows of R.
    const std::size_t S = history_step.size(), C = ckpt_step.size();
    std::vector<std::vector<StepMetrics>> history(S, std::vector<StepMetrics>(R));
    for (const Input& x : in) {
      const h5::Group g = x.file.open_group("history");
      const std::size_t Rk = x.target.size();
      for (const auto& [name, member] : kStepMetricFields) {
        const std::vector<double> v = g.open_dataset(name).read_doubles();
        for (std::size_t s = 0; s < S; ++s)
          for (std::size_t m = 0; m < Rk; ++m) history[s][x.target[m]].*member = v[s * Rk + m];
      }
    }
    for (std::size_t s = 0; s < S; ++s) writer->append_history(history_step[s], history[s]);

    // Checkpoints: diagnostics as above; weights read one checkpoint of one shape group at a time.
    for (std::size_t c = 0; c < C; ++c) {
      std::vector<Diagnostics> diag(R);
      std::vector<ReplicaWeights> weights(R);
      for (const Input& x : in) {
        const h5::Group g = x.file.open_group("checkpoints");
        const std::size_t Rk = x.target.size();
        for (const auto& [name, member] : kCheckpointMembers) {
          std::vector<double> v(Rk);
          g.open_dataset(name).read_block(H5T_NATIVE_DOUBLE, {c, 0}, {1, Rk}, v.data());
          for (std::size_t m = 0; m < Rk; ++m) diag[x.target[m]].*member = v[m];
        }
        if (g.is_dataset("eval_accuracy_by_condition")) {
          const h5::Dataset ds = g.open_dataset("eval_accuracy_by_condition");
          const std::size_t K = ds.dims().at(2);
          std::vector<double> v(Rk * K);
          ds.read_block(H5T_NATIVE_DOUBLE, {c, 0, 0}, {1, Rk, K}, v.data());
          for (std::size_t m = 0; m < Rk; ++m) diag[x.target[m]].eval_accuracy_by_condition.assign(v.begin() + m * K, v.begin() + (m + 1) * K);
        }
        std::map<std::int64_t, std::size_t> local;  // global id -> merged position
        for (std::size_t m = 0; m < Rk; ++m) local[x.ids[m]] = x.target[m];
        const h5::Group wg = g.open_group("weights");
        for (const std::string& gname : wg.child_names()) {
          const h5::Group sg = wg.open_group(gname);
          const std::vector<std::int64_t> ids = sg.open_dataset("replica").read_int64s();
          const h5::Dims din = sg.open_dataset("W_in").dims(), dout = sg.open_dataset("W_out").dims();
          const hsize_t Rg = ids.size(), N = din[2], I = din[3], O = dout[2];
          auto read = [&](const char* name, const h5::Dims& block) {
            h5::Dims start{c, 0}, count{1, Rg};
            std::size_t n = Rg;
            for (hsize_t b : block) start.push_back(0), count.push_back(b), n *= b;
            std::vector<float> v(n);
            sg.open_dataset(name).read_block(H5T_NATIVE_FLOAT, start, count, v.data());
            return v;
          };
          const auto W_rec = read("W_rec", {N, N}), W_dale = read("W_dale", {N, N}), W_free = read("W_free", {N, N});
          const auto W_in = read("W_in", {N, I}), W_out = read("W_out", {O, N}), b = read("b", {N});
          const auto b_out = read("b_out", {O}), alpha = read("alpha", {}), sv = read("singular_values", {N});
          const auto alpha_units = read("alpha_units", {N});
          const hsize_t bins = kLogwBins;
          const auto hist_e = read("logw_hist_e", {bins}), hist_i = read("logw_hist_i", {bins});
          auto slice = [](const std::vector<float>& v, std::size_t m, std::size_t n) {
            return std::vector<float>(v.begin() + m * n, v.begin() + (m + 1) * n);
          };
          for (std::size_t m = 0; m < Rg; ++m) {
            const auto it = local.find(ids[m]);
            if (it == local.end())
              throw InputError(x.path + ": weight group " + gname + " holds replica " + std::to_string(ids[m]) +
                               ", which /replicas/id does not list");
            ReplicaWeights& w = weights[it->second];
            w.N = static_cast<int>(N), w.I = static_cast<int>(I), w.O = static_cast<int>(O);
            w.W_rec = slice(W_rec, m, N * N), w.W_dale = slice(W_dale, m, N * N), w.W_free = slice(W_free, m, N * N);
            w.W_in = slice(W_in, m, N * I), w.W_out = slice(W_out, m, O * N);
            w.b = slice(b, m, N), w.b_out = slice(b_out, m, O);
            w.alpha = alpha[m];
            w.alpha_units = slice(alpha_units, m, N);
            diag[it->second].singular_values = slice(sv, m, N);
            diag[it->second].logw_hist_e = slice(hist_e, m, bins);
            diag[it->second].logw_hist_i = slice(hist_i, m, bins);
          }
        }
      }
      writer->append_checkpoint(ckpt_step[c], diag, weights);
    }
    // The final training state, as a single run's file holds it (/resume), when every shard has one.
    bool have_state = true;
    for (const Input& x : in) have_state = have_state && x.file.is_group("resume");
    std::vector<ReplicaModel> state(have_state ? R : 0);
    if (have_state) {
      std::int64_t next = -1;
      for (const Input& x : in) {
        SavedState saved = read_saved_state(x.path);
        if (saved.params.size() != x.target.size() || (next >= 0 && saved.point.next_iteration != next))
          throw InputError(x.path + ": its resume state (/resume) does not match its replicas or the other shards'");
        next = saved.point.next_iteration;
        for (std::size_t m = 0; m < x.target.size(); ++m) {
          ReplicaModel& st = state[x.target[m]];
          st.cfg = &sweep.replicas[x.target[m]];
          st.params = std::move(saved.params[m]);
          st.moment1 = std::move(saved.moment1[m]);
          st.moment2 = std::move(saved.moment2[m]);
          st.adam_steps = saved.adam_steps[m];
          st.diverged_step = saved.diverged_step[m];
          if (!saved.mask_rec.empty()) st.mask_rec = std::move(saved.mask_rec[m]);
        }
      }
      writer->save_resume_point(next, state);
    }
    writer->set_replica_status(status, diverged_step);
    writer->close();
    MergeResult res;
    res.n_inputs = static_cast<int>(in.size());
    res.n_replicas = static_cast<int>(R);
    res.n_history_rows = S;
    res.n_checkpoints = C;
    return res;
  } catch (...) {
    writer.reset();
    remove_run_file(output);  // never leave a half-merged file behind
    throw;
  }
}

}  // namespace dalesim
