// Reads a trained replica back: its config from the sweep text the file holds, its structure
// (masks, leak rates) drawn again by init_replica, its parameters from /resume (the last save
// point, exact; the layout io/run_file_writer.cpp writes and read_saved_state reads) or from a
// checkpoint's weights.
#include "dynamics/trained_replica.hpp"

#include <algorithm>
#include <cmath>

#include "dalesim/history.hpp"
#include "dalesim/sweep.hpp"
#include "io/h5.hpp"

namespace dalesim {

namespace {

std::string list_ids(const std::vector<double>& ids) {
  std::string s;
  const std::size_t shown = std::min<std::size_t>(ids.size(), 12);
  for (std::size_t k = 0; k < shown; ++k) s += (k ? ", " : "") + std::to_string(static_cast<long long>(ids[k]));
  if (ids.size() > shown) s += ", ... (" + std::to_string(ids.size()) + " in all)";
  return s;
}

// The checkpoint's float32 weights as a `free` model with the same dynamics: W_free = the
// effective W_rec (every parameterisation, mask and alpha folded in), W_in and the biases
// effective, W_out raw with the replica's readout mask kept.
void use_checkpoint_weights(const ReplicaWeights& w, TrainedReplica& t) {
  ReplicaModel& m = t.model;
  ReplicaConfig& cfg = *t.config;
  cfg.model.arch = Arch::free;
  cfg.train.rule = Rule::gd;  // plain biases in the layout; the rule plays no part in a forward pass
  const int N = w.N, I = w.I, O = w.O;
  m.layout = ParamLayout::make(Arch::free, N, I, O);
  m.params.assign(m.layout.size, 0.0);
  std::copy(w.W_rec.begin(), w.W_rec.end(), m.tensor(Tensor::W_free));
  std::copy(w.W_in.begin(), w.W_in.end(), m.tensor(Tensor::W_in));
  std::copy(w.b.begin(), w.b.end(), m.tensor(Tensor::b));
  std::copy(w.W_out.begin(), w.W_out.end(), m.tensor(Tensor::W_out));
  std::copy(w.b_out.begin(), w.b_out.end(), m.tensor(Tensor::b_out));
  m.mask_rec.assign(static_cast<std::size_t>(N) * N, 1.f);  // already in W_rec
  m.mask_in.assign(static_cast<std::size_t>(N) * I, 1.f);   // already in W_in
  m.moment1.clear();
  m.moment2.clear();
  m.diverged_step = -1;
}

// One replica's parameters from /resume (the datasets read_saved_state reads for --resume, sliced
// here so that a large sweep's state is not read whole): false when the file's resume point is
// not the checkpoint at `step` with `n_checkpoints` rows before it.
bool read_saved_replica(const std::string& path, int position, std::size_t step, std::size_t n_checkpoints,
                        std::vector<double>& params, std::int64_t& diverged_step, std::vector<float>& mask_rec) {
  h5::silence_errors();
  const h5::File f = h5::File::open_read_only(path);
  if (!f.is_group("resume")) return false;
  const h5::Group g = f.open_group("resume");
  if (g.int_attribute("next_iteration") != static_cast<std::int64_t>(step) ||
      g.int_attribute("checkpoint_rows") != static_cast<std::int64_t>(n_checkpoints))
    return false;
  const std::vector<std::int64_t> offset = g.open_dataset("offset").read_int64s();
  const std::vector<std::int64_t> diverged = g.open_dataset("diverged_step").read_int64s();
  const h5::Dataset all = g.open_dataset("params");
  const h5::Dims dims = all.dims();
  if (static_cast<std::size_t>(position) + 1 >= offset.size() || diverged.size() + 1 != offset.size() ||
      dims.size() != 1)
    return false;
  const std::int64_t begin = offset[position], end = offset[position + 1];
  if (begin < 0 || end < begin || static_cast<hsize_t>(end) > dims[0]) return false;
  params.assign(static_cast<std::size_t>(end - begin), 0.0);
  if (end > begin)
    all.read_block(H5T_NATIVE_DOUBLE, {static_cast<hsize_t>(begin)}, {static_cast<hsize_t>(end - begin)}, params.data());
  diverged_step = diverged[position];
  // The recurrent mask as training left it (pruning changes it), when the file saves one.
  mask_rec.clear();
  if (g.is_dataset("mask_rec") && g.is_dataset("mask_offset")) {
    const std::vector<std::int64_t> mo = g.open_dataset("mask_offset").read_int64s();
    const h5::Dataset masks = g.open_dataset("mask_rec");
    if (mo.size() != offset.size() || masks.dims().size() != 1) return false;
    const std::int64_t m0 = mo[position], m1 = mo[position + 1];
    if (m0 < 0 || m1 < m0 || static_cast<hsize_t>(m1) > masks.dims()[0]) return false;
    mask_rec.assign(static_cast<std::size_t>(m1 - m0), 0.f);
    if (m1 > m0)
      masks.read_block(H5T_NATIVE_FLOAT, {static_cast<hsize_t>(m0)}, {static_cast<hsize_t>(m1 - m0)}, mask_rec.data());
  }
  return true;
}

}  // namespace

int resolve_checkpoint(const std::string& value, int n_checkpoints, const std::vector<std::int64_t>& steps) {
  auto allowed = [&] {
    std::string s = "\"last\" or an index 0.." + std::to_string(n_checkpoints - 1) + " of the file's " +
                    std::to_string(n_checkpoints) + " checkpoints (at steps";
    const std::size_t shown = std::min<std::size_t>(steps.size(), 8);
    for (std::size_t k = 0; k < shown; ++k) s += (k ? ", " : " ") + std::to_string(steps[k]);
    return s + (steps.size() > shown ? ", ...)" : ")");
  };
  if (n_checkpoints == 0)
    throw ConfigError("--checkpoint", value, "a file with at least one checkpoint",
                      "this run was stopped before its first checkpoint");
  if (value == "last") return n_checkpoints - 1;
  std::size_t used = 0;
  long long c = -1;
  try {
    c = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || used == 0) throw ConfigError("--checkpoint", value, allowed());
  if (c < 0 || c >= n_checkpoints) throw ConfigError("--checkpoint", value, allowed(), "checkpoint out of range");
  return static_cast<int>(c);
}

TrainedReplica load_trained_replica(const std::string& path, int replica_id, const std::string& checkpoint) {
  RunFile f;
  try {
    f = read_run_file(path);
  } catch (const std::runtime_error& e) {
    throw InputError(e.what());  // a file named by the user
  }
  const std::vector<double>* ids = f.numeric_column("id");
  const std::vector<double>* n_in = f.numeric_column("n_inputs");
  const std::vector<double>* n_out = f.numeric_column("n_outputs");
  if (!ids || !n_in || !n_out || f.sweep_text.empty())
    throw InputError(path + ": not a complete dalesim run file (no /replicas/id, n_inputs, n_outputs or sweep_text)");
  const auto it = std::find(ids->begin(), ids->end(), static_cast<double>(replica_id));
  if (it == ids->end())
    throw ConfigError("--replica", std::to_string(replica_id), "a replica id in " + path + ": " + list_ids(*ids),
                      "`dalesim inspect " + path + "` lists them");
  TrainedReplica t;
  t.id = replica_id;
  t.position = static_cast<int>(it - ids->begin());
  t.n_checkpoints = static_cast<int>(f.checkpoint_step.size());
  t.checkpoint = resolve_checkpoint(checkpoint, t.n_checkpoints, f.checkpoint_step);
  t.step = f.checkpoint_step[t.checkpoint];

  const Sweep sweep = parse_sweep(f.sweep_text, path + " (its sweep_text)");
  const auto cfg = std::find_if(sweep.replicas.begin(), sweep.replicas.end(),
                                [&](const ReplicaConfig& c) { return c.id == replica_id; });
  if (cfg == sweep.replicas.end())
    throw InputError(path + ": replica " + std::to_string(replica_id) + " is in /replicas but not in the file's sweep");
  t.config = std::make_unique<ReplicaConfig>(*cfg);
  t.arch = to_string(cfg->model.arch);
  const int I = static_cast<int>((*n_in)[t.position]), O = static_cast<int>((*n_out)[t.position]);
  t.model = init_replica(*t.config, I, O);  // structure: masks, signs, leak rates, noise scale

  const ReplicaWeights w = read_checkpoint_weights(path, replica_id, t.checkpoint);
  t.alpha = w.alpha;
  // The last checkpoint is also the resume point of a run that ended there: take the exact state.
  if (t.checkpoint == t.n_checkpoints - 1) {
    try {
      std::vector<double> params;
      std::vector<float> mask;
      std::int64_t diverged = -1;
      if (read_saved_replica(path, t.position, static_cast<std::size_t>(t.step), f.checkpoint_step.size(), params,
                             diverged, mask) &&
          params.size() == t.model.layout.size && (mask.empty() || mask.size() == t.model.mask_rec.size())) {
        t.model.params = std::move(params);
        t.model.diverged_step = diverged;
        if (!mask.empty()) t.model.mask_rec = std::move(mask);  // empty: a file without saved masks
        t.exact = true;
      }
    } catch (const std::runtime_error&) {  // an inconsistent /resume: the checkpoint's weights still serve
    }
  }
  if (!t.exact) use_checkpoint_weights(w, t);
  return t;
}

}  // namespace dalesim
