// Writes the peers' input file: what PyTorch and JAX need to train the same replicas on the same
// batches, and the engine's losses to agree with.
#include "train/peer_export.hpp"

#include <ostream>

#include "dalesim/backend.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"
#include "io/h5.hpp"

namespace dalesim {

namespace {

void write_floats(h5::File& f, const std::string& name, const h5::Dims& dims, const std::vector<float>& data) {
  h5::Dataset d = f.create_dataset(name, H5T_IEEE_F32LE, h5::Dataspace::simple(dims));
  d.write(H5T_NATIVE_FLOAT, data.data());
}

// Gathers tensor `t` (or a structure array) of every replica into one [R, ...] array.
template <class Get>
std::vector<float> gather(const std::vector<ReplicaModel>& models, Get get) {
  std::vector<float> out;
  for (const ReplicaModel& m : models) {
    const auto part = get(m);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::vector<float> tensor_of(const ReplicaModel& m, Tensor t) {
  const TensorSlot& s = m.layout[t];
  if (!m.layout.has(t)) return {};
  return std::vector<float>(m.params.begin() + s.offset, m.params.begin() + s.offset + s.size());
}

}  // namespace

void export_peer_input(const BenchConfig& config, int iterations, const std::string& backend_kind, int threads,
                       const std::string& path, std::ostream& log) {
  const std::vector<ReplicaConfig> cfgs = bench_replicas(config);
  const auto task = make_task(cfgs.front().task, cfgs.front().model.dt);
  const int I = task->n_inputs(), O = task->n_outputs(), R = config.R, N = config.N, T = config.T, B = config.B;
  std::vector<ReplicaModel> models;
  for (const auto& c : cfgs) models.push_back(init_replica(c, I, O));

  BackendOptions opt;
  opt.n_threads = threads;
  std::string why;
  auto backend = make_backend(backend_kind, opt, &why);
  log << "export-peers: " << why << "\n";
  backend->upload(models);
  std::vector<float> xs, ys, masks;
  std::vector<double> losses;
  Batch batch;
  const std::vector<const Batch*> batch_of(R, &batch);
  for (int it = 0; it < iterations; ++it) {
    task->generate(cfgs.front().data_seed, it, B, batch);
    xs.insert(xs.end(), batch.x.begin(), batch.x.end());
    ys.insert(ys.end(), batch.y.begin(), batch.y.end());
    masks.insert(masks.end(), batch.mask.begin(), batch.mask.end());
    std::vector<StepMetrics> m;
    backend->train_step(it, batch_of, &m);
    for (const StepMetrics& s : m) losses.push_back(s.loss);
  }

  h5::File f = h5::File::create(path, true);
  const TrainConfig& tc = cfgs.front().train;
  f.set_attribute("format", "dalesim-peer-input");
  f.set_attribute("description",
                  "initial weights of R mix replicas (alpha = sigmoid(a)), the batches of K iterations and the "
                  "engine's masked-MSE losses; Adam with per-replica global-norm clipping; Dale clamp after the step; "
                  "see docs/model.md");
  f.set_attribute("engine_backend", backend->name());
  f.set_attribute("engine_device", backend->device());
  for (auto [k, v] : {std::pair<const char*, int>{"R", R}, {"N", N}, {"B", B}, {"T", T}, {"I", I}, {"O", O},
                      {"iterations", iterations}})
    f.set_attribute(k, v);
  for (auto [k, v] : {std::pair<const char*, double>{"lr", tc.lr}, {"lr_alpha", tc.alpha_lr()}, {"beta1", tc.beta1},
                      {"beta2", tc.beta2}, {"eps", tc.eps}, {"clip", tc.clip}})
    f.set_attribute(k, v);
  const h5::Dims nn{hsize_t(R), hsize_t(N), hsize_t(N)};
  write_floats(f, "W_free", nn, gather(models, [](const ReplicaModel& m) { return tensor_of(m, Tensor::W_free); }));
  write_floats(f, "W_dale", nn, gather(models, [](const ReplicaModel& m) { return tensor_of(m, Tensor::W_dale); }));
  write_floats(f, "a", {hsize_t(R)}, gather(models, [](const ReplicaModel& m) { return tensor_of(m, Tensor::a); }));
  write_floats(f, "W_in", {hsize_t(R), hsize_t(N), hsize_t(I)},
               gather(models, [](const ReplicaModel& m) { return tensor_of(m, Tensor::W_in); }));
  write_floats(f, "b", {hsize_t(R), hsize_t(N)}, gather(models, [](const ReplicaModel& m) { return tensor_of(m, Tensor::b); }));
  write_floats(f, "W_out", {hsize_t(R), hsize_t(O), hsize_t(N)},
               gather(models, [](const ReplicaModel& m) { return tensor_of(m, Tensor::W_out); }));
  write_floats(f, "b_out", {hsize_t(R), hsize_t(O)},
               gather(models, [](const ReplicaModel& m) { return tensor_of(m, Tensor::b_out); }));
  write_floats(f, "mask_rec", nn, gather(models, [](const ReplicaModel& m) { return m.mask_rec; }));
  write_floats(f, "mask_in", {hsize_t(R), hsize_t(N), hsize_t(I)}, gather(models, [](const ReplicaModel& m) { return m.mask_in; }));
  write_floats(f, "mask_out", {hsize_t(R), hsize_t(O), hsize_t(N)}, gather(models, [](const ReplicaModel& m) { return m.mask_out; }));
  write_floats(f, "col_sign", {hsize_t(R), hsize_t(N)}, gather(models, [](const ReplicaModel& m) { return m.col_sign; }));
  write_floats(f, "leak", {hsize_t(R), hsize_t(N)}, gather(models, [](const ReplicaModel& m) { return m.leak; }));
  const h5::Dims kt{hsize_t(iterations), hsize_t(T), hsize_t(B)};
  write_floats(f, "x", {kt[0], kt[1], kt[2], hsize_t(I)}, xs);
  write_floats(f, "y", {kt[0], kt[1], kt[2], hsize_t(O)}, ys);
  write_floats(f, "mask", {kt[0], kt[1], kt[2], hsize_t(O)}, masks);
  h5::Dataset loss = f.create_dataset("loss", H5T_IEEE_F64LE, h5::Dataspace::simple({hsize_t(iterations), hsize_t(R)}));
  loss.write(H5T_NATIVE_DOUBLE, losses.data());
  f.close();
  log << "export-peers: wrote " << path << " (" << config.label() << ", " << iterations << " iterations)\n";
}

}  // namespace dalesim
