// The CUDA backend: replicas grouped into buckets of one shape, each bucket's tensors single device
// allocations with every replica's matrices contiguous, one stream per bucket, and the whole
// iteration captured once into a CUDA graph and replayed. Host data in and out only.
#include <cuda_runtime.h>

#include <cmath>
#include <map>
#include <memory>
#include <tuple>

#include "cuda/bucket.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/device_buffer.hpp"
#include "cuda/dispatch.hpp"
#include "cuda/gemm.cuh"
#include "cuda/recurrent_v2.cuh"
#include "cuda/step_kernels.cuh"
#include "dalesim/backend.hpp"
#include "dalesim/task.hpp"

namespace dalesim {

namespace {

using cuda::DeviceBuffer;
using cuda::GemmKernel;
using cuda::MatView;
using cuda::OutView;
using cuda::PinnedBuffer;

// (arch, DANN part, n_i, n_i_in, split biases, N, I, O, T, B, entries of a, train.kernel): replicas
// with equal keys have one parameter layout and one kernel plan, and run as one strided batch.
using BucketKey = std::tuple<int, bool, int, int, bool, int, int, int, int, int, std::size_t, int>;
static_assert(cuda::kCostMetrics == kCostCount, "the metrics row holds every cost");

template <class T>
DeviceBuffer<T> upload_vector(const std::vector<T>& host, cudaStream_t s) {
  DeviceBuffer<T> d(host.size());
  if (!host.empty()) DALESIM_CUDA_CHECK(cudaMemcpyAsync(d.get(), host.data(), d.bytes(), cudaMemcpyHostToDevice, s));
  DALESIM_CUDA_CHECK(cudaStreamSynchronize(s));  // the host vector may go away
  return d;
}

class Bucket {
 public:
  Bucket(const std::vector<int>& members, const std::vector<ReplicaModel>& models, int T, int B, GemmKernel gemm,
         const cuda::KernelPlan& plan);
  ~Bucket();
  Bucket(const Bucket&) = delete;
  Bucket& operator=(const Bucket&) = delete;

  // Copies this iteration's batches to the device (asynchronously on the bucket's stream).
  void stage(std::int64_t iteration, const std::vector<const Batch*>& batches);
  void launch_train();
  void launch_evaluate();
  void fetch_metrics(std::vector<StepMetrics>& out);
  void fetch_diverged(std::vector<std::int64_t>& out);
  void fetch_params(std::vector<ReplicaModel>& models);
  void synchronize() { DALESIM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  std::size_t bytes() const { return bytes_; }

 private:
  void record(bool need_grad, bool evaluating);
  template <class T>
  T* alloc(DeviceBuffer<T>& buf, std::size_t n) {
    buf = DeviceBuffer<T>(n);
    bytes_ += buf.bytes();
    return buf.get();
  }

  std::vector<int> members_;  // global replica ids, in order
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::Gemm> gemm_;  // after stream_: bound to it
  cudaGraphExec_t graph_ = nullptr;
  cuda::BucketView v_{};
  cuda::KernelPlan plan_;  // v1 or v2 (dispatch.hpp)
  std::size_t bytes_ = 0;
  // Owners of the device memory that v_ points into.
  DeviceBuffer<float> params_, grad_, m1_, m2_, masks_rec_, masks_in_, masks_out_, col_sign_, leak_, noise_std_;
  DeviceBuffer<float> hyper_f_, bc1_, bc2_, clip_scale_, alpha_;
  DeviceBuffer<double> clip_, betas_, metrics_, mask_sum_;
  DeviceBuffer<int> hyper_i_, stream_of_, labels_, targets_, acc_labels_, acc_;
  DeviceBuffer<double> costs_;
  DeviceBuffer<unsigned long long> noise_seed_;
  DeviceBuffer<long long> diverged_, adam_steps_, iteration_;
  DeviceBuffer<float> w_eff_, w_in_eff_, w_out_eff_, d_w_eff_, dale_eff_, d_dale_, x_, v_buf_, r_buf_, g_, dr_, z_, e_;
  DeviceBuffer<float> x_streams_, y_streams_, mask_streams_;
  // Pinned staging for the per-iteration uploads, double-buffered: iteration k fills slot k % 2
  // while the copies of iteration k - 1 may still be queued, and waits only for those of k - 2
  // (its slot's event), so the host never waits for the device at the end of an iteration.
  struct Staging {
    PinnedBuffer<float> x, y, mask;
    PinnedBuffer<int> labels, targets, acc_labels, acc, stream_of;
    PinnedBuffer<long long> iteration;
    cudaEvent_t copied = nullptr;  // recorded after the slot's copies
  };
  Staging staging_[2];
  int next_slot_ = 0;
  PinnedBuffer<double> h_metrics_;
};

Bucket::Bucket(const std::vector<int>& members, const std::vector<ReplicaModel>& models, int T, int B, GemmKernel gemm,
               const cuda::KernelPlan& plan)
    : members_(members), plan_(plan) {
  if (plan_.variant == cuda::Variant::v2) cuda::prepare_recurrent_v2(plan_);
  DALESIM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  gemm_ = std::make_unique<cuda::Gemm>(gemm, stream_);
  const ReplicaModel& first = models[members.front()];
  const ParamLayout& l = first.layout;
  const int R = static_cast<int>(members.size()), N = l.N, I = l.I, O = l.O;
  const std::size_t P = l.size;
  auto off = [&](Tensor t) { return l.has(t) ? static_cast<long long>(l[t].offset) : -1LL; };
  v_.R = R;
  v_.N = N;
  v_.I = I;
  v_.O = O;
  v_.T = T;
  v_.B = B;
  v_.P = static_cast<int>(P);
  v_.arch = static_cast<int>(l.arch);
  v_.off_wf = off(Tensor::W_free);
  v_.off_wd = off(Tensor::W_dale);
  v_.off_win = off(Tensor::W_in);
  v_.off_b = off(Tensor::b);
  v_.off_wout = off(Tensor::W_out);
  v_.off_bout = off(Tensor::b_out);
  v_.off_a = off(Tensor::a);
  v_.off_bneg = off(Tensor::b_neg);
  v_.off_boutneg = off(Tensor::b_out_neg);
  v_.dann = l.dann;
  v_.n_i = l[Tensor::W_ei].cols;
  v_.n_i_in = l[Tensor::U_ei].cols;
  v_.off_wei = off(Tensor::W_ei);
  v_.off_wie = off(Tensor::W_ie);
  v_.off_uei = off(Tensor::U_ei);
  v_.off_uie = off(Tensor::U_ie);
  // As correct_dann_gradients: g /= Real(by) with by = sqrt(n_e), n_e, sqrt(n_e), I in double.
  v_.fisher_wie = static_cast<float>(std::sqrt(static_cast<double>(N)));
  v_.fisher_wei = static_cast<float>(static_cast<double>(N));
  v_.fisher_uie = static_cast<float>(std::sqrt(static_cast<double>(N)));
  v_.fisher_uei = static_cast<float>(static_cast<double>(I));

  // Host images of the per-replica arrays, in the float rounding the CPU trainer uses.
  std::vector<float> params, mrec, min, mout, sign, leak, nstd;
  constexpr int kHyperF = 10, kHyperI = 7;
  std::vector<double> costs(static_cast<std::size_t>(kCostCount) * R);
  std::vector<float> hf(kHyperF * static_cast<std::size_t>(R));
  std::vector<double> clip(R), betas(2 * static_cast<std::size_t>(R));
  std::vector<int> hi(kHyperI * static_cast<std::size_t>(R));
  std::vector<unsigned long long> seeds(R);
  // Optimiser state: zeros for a fresh start, the saved state of a resumed run.
  std::vector<float> m1(static_cast<std::size_t>(R) * P, 0.f), m2(m1.size(), 0.f);
  std::vector<long long> adam_steps(R, 0), diverged(R, -1);
  for (int k = 0; k < R; ++k) {
    const ReplicaModel& m = models[members[k]];
    const TrainConfig& tc = m.cfg->train;
    params.insert(params.end(), m.params.begin(), m.params.end());
    if (m.moment1.size() == P) std::copy(m.moment1.begin(), m.moment1.end(), m1.begin() + k * P);
    if (m.moment2.size() == P) std::copy(m.moment2.begin(), m.moment2.end(), m2.begin() + k * P);
    adam_steps[k] = m.adam_steps;
    diverged[k] = m.diverged_step;
    mrec.insert(mrec.end(), m.mask_rec.begin(), m.mask_rec.end());
    min.insert(min.end(), m.mask_in.begin(), m.mask_in.end());
    mout.insert(mout.end(), m.mask_out.begin(), m.mask_out.end());
    sign.insert(sign.end(), m.col_sign.begin(), m.col_sign.end());
    leak.insert(leak.end(), m.leak.begin(), m.leak.end());
    nstd.insert(nstd.end(), m.noise_std.begin(), m.noise_std.end());
    const float h[kHyperF] = {float(tc.lr),   float(tc.alpha_lr()),   float(tc.momentum), float(tc.beta1),
                              float(1 - tc.beta1), float(tc.beta2), float(1 - tc.beta2), float(tc.eps),
                              float(tc.weight_decay), float(tc.md_p)};
    for (int j = 0; j < kHyperF; ++j) hf[j * R + k] = h[j];
    clip[k] = tc.clip;
    betas[k] = tc.beta1;
    betas[R + k] = tc.beta2;
    hi[0 * R + k] = static_cast<int>(tc.optimizer);
    // As project_constraints: U_ee of arch dann is non-negative too.
    hi[1 * R + k] = l.arch == Arch::dann || m.cfg->model.input_sign == InputSign::positive;
    hi[2 * R + k] = static_cast<int>(m.cfg->model.phi);
    hi[3 * R + k] = m.cfg->model.sigma_rec > 0;
    hi[4 * R + k] = static_cast<int>(tc.rule);
    hi[5 * R + k] = m.cfg->model.alpha_form == AlphaForm::clamp;
    hi[6 * R + k] = static_cast<int>(tc.dale);
    for (const CostField& c : kCostFields) costs[static_cast<int>(c.cost) * R + k] = tc.*c.coefficient;
    seeds[k] = m.cfg->noise_seed;
  }
  auto up = [&](DeviceBuffer<float>& buf, const std::vector<float>& h) {
    buf = upload_vector(h, stream_);
    bytes_ += buf.bytes();
    return buf.get();
  };
  v_.params = up(params_, params);
  v_.mask_rec = up(masks_rec_, mrec);
  v_.mask_in = up(masks_in_, min);
  v_.mask_out = up(masks_out_, mout);
  v_.col_sign = up(col_sign_, sign);
  v_.leak = up(leak_, leak);
  v_.noise_std = up(noise_std_, nstd);
  float* hfp = up(hyper_f_, hf);
  v_.lr = hfp;
  v_.lr_alpha = hfp + R;
  v_.momentum = hfp + 2 * R;
  v_.beta1 = hfp + 3 * R;
  v_.one_minus_beta1 = hfp + 4 * R;
  v_.beta2 = hfp + 5 * R;
  v_.one_minus_beta2 = hfp + 6 * R;
  v_.eps = hfp + 7 * R;
  v_.weight_decay = hfp + 8 * R;
  v_.md_p = hfp + 9 * R;
  clip_ = upload_vector(clip, stream_);
  v_.clip = clip_.get();
  betas_ = upload_vector(betas, stream_);
  v_.beta1_d = betas_.get();
  v_.beta2_d = betas_.get() + R;
  hyper_i_ = upload_vector(hi, stream_);
  v_.optimizer = hyper_i_.get();
  v_.input_positive = hyper_i_.get() + R;
  v_.phi = hyper_i_.get() + 2 * R;
  v_.noisy = hyper_i_.get() + 3 * R;
  v_.rule = hyper_i_.get() + 4 * R;
  v_.alpha_clamp = hyper_i_.get() + 5 * R;
  v_.dale_mode = hyper_i_.get() + 6 * R;
  v_.n_alpha = static_cast<int>(l[Tensor::a].size());
  costs_ = upload_vector(costs, stream_);
  v_.cost = costs_.get();
  auto any = [&](std::initializer_list<Cost> kinds) {
    for (Cost c : kinds)
      for (int k = 0; k < R; ++k)
        if (costs[static_cast<int>(c) * R + k] != 0) return 1;
    return 0;
  };
  v_.any_io_cost = any({Cost::l1_in, Cost::l2_in, Cost::l1_out, Cost::l2_out});
  v_.any_rate_cost = any({Cost::l2_firing_rate});
  v_.any_cost = any({Cost::l1_in, Cost::l2_in, Cost::l1_rec, Cost::l2_rec, Cost::l1_out, Cost::l2_out, Cost::l1_free,
                     Cost::l2_free, Cost::l2_firing_rate});
  noise_seed_ = upload_vector(seeds, stream_);
  v_.noise_seed = noise_seed_.get();
  diverged_ = upload_vector(diverged, stream_);
  v_.diverged_step = diverged_.get();
  adam_steps_ = upload_vector(adam_steps, stream_);
  v_.adam_steps = adam_steps_.get();
  v_.grad = alloc(grad_, R * P);
  v_.m1 = up(m1_, m1);
  v_.m2 = up(m2_, m2);
  v_.bias_correction1 = alloc(bc1_, R);
  v_.bias_correction2 = alloc(bc2_, R);
  v_.clip_scale = alloc(clip_scale_, R);
  v_.alpha = alloc(alpha_, static_cast<std::size_t>(R) * N);
  v_.metrics = alloc(metrics_, static_cast<std::size_t>(R) * cuda::kMetricCount);
  v_.mask_sum = alloc(mask_sum_, R);
  const std::size_t nn = static_cast<std::size_t>(N) * N, tb = static_cast<std::size_t>(T) * B;
  v_.w_eff = alloc(w_eff_, R * nn);
  v_.w_in_eff = alloc(w_in_eff_, static_cast<std::size_t>(R) * N * I);
  v_.w_out_eff = alloc(w_out_eff_, static_cast<std::size_t>(R) * O * N);
  v_.d_w_eff = alloc(d_w_eff_, R * nn);
  v_.dale_eff = l.dann ? alloc(dale_eff_, R * nn) : nullptr;
  v_.d_dale = l.dann ? alloc(d_dale_, R * nn) : nullptr;
  v_.x = alloc(x_, R * tb * I);
  v_.v = alloc(v_buf_, R * tb * N);
  v_.r = alloc(r_buf_, R * tb * N);
  v_.g = alloc(g_, R * tb * N);
  v_.dr = alloc(dr_, R * tb * N);
  v_.z = alloc(z_, R * tb * O);
  v_.e = alloc(e_, R * tb * O);
  // Room for every replica to bring its own batch (the worst case of stream sharing).
  v_.x_streams = alloc(x_streams_, R * tb * I);
  v_.y_streams = alloc(y_streams_, R * tb * O);
  v_.mask_streams = alloc(mask_streams_, R * tb * O);
  v_.label_streams = alloc(labels_, static_cast<std::size_t>(R) * B);
  v_.target_streams = alloc(targets_, R * tb);
  v_.acc_label_streams = alloc(acc_labels_, R * tb);
  v_.acc_streams = alloc(acc_, static_cast<std::size_t>(R) * cuda::kStreamInfoCount);
  v_.stream_of = alloc(stream_of_, R);
  v_.iteration = alloc(iteration_, 1);
  for (Staging& st : staging_) {
    st.x = PinnedBuffer<float>(R * tb * I);
    st.y = PinnedBuffer<float>(R * tb * O);
    st.mask = PinnedBuffer<float>(R * tb * O);
    st.labels = PinnedBuffer<int>(static_cast<std::size_t>(R) * B);
    st.targets = PinnedBuffer<int>(R * tb);
    st.acc_labels = PinnedBuffer<int>(R * tb);
    st.acc = PinnedBuffer<int>(static_cast<std::size_t>(R) * cuda::kStreamInfoCount);
    st.stream_of = PinnedBuffer<int>(R);
    st.iteration = PinnedBuffer<long long>(1);
    DALESIM_CUDA_CHECK(cudaEventCreateWithFlags(&st.copied, cudaEventDisableTiming));
  }
  h_metrics_ = PinnedBuffer<double>(static_cast<std::size_t>(R) * cuda::kMetricCount);
}

Bucket::~Bucket() {
  if (graph_) cudaGraphExecDestroy(graph_);
  if (stream_) cudaStreamSynchronize(stream_);
  for (Staging& st : staging_)
    if (st.copied) cudaEventDestroy(st.copied);
  gemm_.reset();  // its handle is bound to the stream
  if (stream_) cudaStreamDestroy(stream_);
}

void Bucket::stage(std::int64_t iteration, const std::vector<const Batch*>& batches) {
  const int R = v_.R, T = v_.T, B = v_.B, I = v_.I, O = v_.O;
  const std::size_t tbi = static_cast<std::size_t>(T) * B * I, tbo = static_cast<std::size_t>(T) * B * O;
  Staging& st = staging_[next_slot_];
  // The copies that last read this slot (two stagings ago) must have run before it is rewritten.
  DALESIM_CUDA_CHECK(cudaEventSynchronize(st.copied));
  next_slot_ ^= 1;
  std::map<const Batch*, int> index;
  for (int k = 0; k < R; ++k) {
    const Batch* b = batches[members_[k]];
    check_batch(*b, I, O);  // as the CPU trainer checks it
    if (b->T != T || b->B != B)
      throw std::invalid_argument("cuda backend: replica " + std::to_string(members_[k]) +
                                  " got a batch of another shape than at its first step");
    auto [it, added] = index.emplace(b, static_cast<int>(index.size()));
    const int s = it->second;
    st.stream_of.get()[k] = s;
    if (!added) continue;
    // Arrays a batch's loss or accuracy form does not use may be absent; they are not read then.
    std::copy(b->x.begin(), b->x.end(), st.x.get() + s * tbi);
    if (b->y.size() == tbo) std::copy(b->y.begin(), b->y.end(), st.y.get() + s * tbo);
    if (b->mask.size() == tbo) std::copy(b->mask.begin(), b->mask.end(), st.mask.get() + s * tbo);
    if (b->label.size() == static_cast<std::size_t>(B))
      std::copy(b->label.begin(), b->label.end(), st.labels.get() + static_cast<std::size_t>(s) * B);
    const std::size_t tb = static_cast<std::size_t>(T) * B;
    int* targets = st.targets.get() + s * tb;
    int* acc_labels = st.acc_labels.get() + s * tb;
    for (std::size_t k = 0; k < tb; ++k) {
      targets[k] = b->loss == LossKind::cross_entropy ? b->target[k] : -1;
      acc_labels[k] = b->acc_label.size() == tb ? b->acc_label[k] : -1;
      if (targets[k] >= O)
        throw std::invalid_argument("cross-entropy target " + std::to_string(targets[k]) + " at row " +
                                    std::to_string(k) + " is not below the number of outputs " + std::to_string(O));
    }
    int* acc = st.acc.get() + cuda::kStreamInfoCount * s;
    acc[cuda::kAccStep] = b->acc_step;
    acc[cuda::kAccBegin] = b->acc_begin;
    acc[cuda::kAccEnd] = b->acc_end;
    acc[cuda::kLossKind] = static_cast<int>(b->loss);
  }
  const std::size_t S = index.size();
  st.iteration.get()[0] = iteration;
  auto copy = [&](void* dst, const void* src, std::size_t bytes) {
    DALESIM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  };
  copy(const_cast<float*>(v_.x_streams), st.x.get(), S * tbi * sizeof(float));
  copy(const_cast<float*>(v_.y_streams), st.y.get(), S * tbo * sizeof(float));
  copy(const_cast<float*>(v_.mask_streams), st.mask.get(), S * tbo * sizeof(float));
  copy(const_cast<int*>(v_.label_streams), st.labels.get(), S * B * sizeof(int));
  copy(const_cast<int*>(v_.target_streams), st.targets.get(), S * T * B * sizeof(int));
  copy(const_cast<int*>(v_.acc_label_streams), st.acc_labels.get(), S * T * B * sizeof(int));
  copy(const_cast<int*>(v_.acc_streams), st.acc.get(), S * cuda::kStreamInfoCount * sizeof(int));
  copy(const_cast<int*>(v_.stream_of), st.stream_of.get(), R * sizeof(int));
  copy(const_cast<long long*>(v_.iteration), st.iteration.get(), sizeof(long long));
  DALESIM_CUDA_CHECK(cudaEventRecord(st.copied, stream_));
}

// The iteration, as a fixed sequence of launches on the bucket's stream (captured into a graph
// for training). Shapes in comments: R replicas, T steps, B batch, N units, I inputs, O outputs.
void Bucket::record(bool need_grad, bool evaluating) {
  const cuda::BucketView& v = v_;
  const int T = v.T, B = v.B, N = v.N, I = v.I, O = v.O;
  const long long bn = static_cast<long long>(B) * N, tbn = T * bn, nn = static_cast<long long>(N) * N;
  const long long tbi = static_cast<long long>(T) * B * I, tbo = static_cast<long long>(T) * B * O;
  const long long ni = static_cast<long long>(N) * I, on = static_cast<long long>(O) * N;
  const int TB = T * B;
  cudaStream_t s = stream_;
  auto gemm = [&](int M, int Nc, int K, MatView a, MatView b, float beta, OutView c) {
    gemm_->batched(v.R, M, Nc, K, 1.f, a, b, beta, c);
  };
  const long long P = v.P;
  // Replica-batched products of parameter tensors, which sit at an offset of each replica's [P] row.
  auto param = [&](long long off, int ld, bool trans) { return MatView{v.params + off, ld, P, trans}; };
  auto grad = [&](long long off, int ld, bool trans) { return MatView{v.grad + off, ld, P, trans}; };
  auto minus_gemm = [&](int M, int Nc, int K, MatView a, MatView b, float beta, OutView c) {
    gemm_->batched(v.R, M, Nc, K, -1.f, a, b, beta, c);
  };
  cuda::launch_build_effective(v, s);
  if (v.dann) {
    // D = W_ee * mask - W_ei W_ie: [N, n_i] x [n_i, N]
    minus_gemm(N, N, v.n_i, param(v.off_wei, v.n_i, false), param(v.off_wie, N, false), 1.f, {v.dale_eff, N, nn});
    // U_eff = U_ee * mask_in - U_ei U_ie: [N, n_i_in] x [n_i_in, I] (arch dann)
    if (v.n_i_in > 0)
      minus_gemm(N, I, v.n_i_in, param(v.off_uei, v.n_i_in, false), param(v.off_uie, I, false), 1.f,
                 {v.w_in_eff, I, ni});
    cuda::launch_combine_dale_part(v, s);
  }
  cuda::launch_gather_inputs(v, s);
  // u = x W_in^T for every step at once: [TB, I] x [I, N]
  gemm(TB, N, I, {v.x, I, tbi, false}, {v.w_in_eff, I, ni, true}, 0.f, {v.v, N, tbn});
  if (plan_.variant == cuda::Variant::v2) {
    cuda::launch_forward_loop_v2(v, plan_, s);  // the loop below in one launch, W_rec in shared memory
  } else {
    for (int t = 0; t < T; ++t) {
      // u_t += r_{t-1} W^T: [B, N] x [N, N]
      if (t > 0) gemm(B, N, N, {v.r + (t - 1) * bn, N, tbn, false}, {v.w_eff, N, nn, true}, 1.f, {v.v + t * bn, N, tbn});
      cuda::launch_forward_step(v, t, s);
    }
  }
  // z = r W_out^T: [TB, N] x [N, O]
  gemm(TB, O, N, {v.r, N, tbn, false}, {v.w_out_eff, N, on, true}, 0.f, {v.z, O, tbo});
  cuda::launch_loss(v, need_grad, evaluating, s);
  cuda::launch_dale_violation(v, evaluating, s);
  if (!need_grad) return;
  // dW_out = e^T r: [O, TB] x [TB, N]; dr = e W_out: [TB, O] x [O, N]
  gemm(O, N, TB, {v.e, O, tbo, true}, {v.r, N, tbn, false}, 0.f, {v.grad + v.off_wout, N, P});
  gemm(TB, N, O, {v.e, O, tbo, false}, {v.w_out_eff, N, on, false}, 0.f, {v.dr, N, tbn});
  if (v.any_rate_cost) cuda::launch_rate_cost_grad(v, s);  // dr += 2 c r / (T B N)
  if (plan_.variant == cuda::Variant::v2) {
    cuda::launch_backward_loop_v2(v, plan_, s);  // the loop below in one launch, W_rec in shared memory
  } else {
    for (int t = T - 1; t >= 0; --t) {
      // dr_t += g_{t+1} W: [B, N] x [N, N]
      if (t < T - 1)
        gemm(B, N, N, {v.g + (t + 1) * bn, N, tbn, false}, {v.w_eff, N, nn, false}, 1.f, {v.dr + t * bn, N, tbn});
      cuda::launch_backward_step(v, t, s);
    }
  }
  // dW_eff = sum_{t>=1} g_t^T r_{t-1}: [N, (T-1)B] x [(T-1)B, N]
  if (T > 1)
    gemm(N, N, (T - 1) * B, {v.g + bn, N, tbn, true}, {v.r, N, tbn, false}, 0.f, {v.d_w_eff, N, nn});
  else
    DALESIM_CUDA_CHECK(cudaMemsetAsync(v.d_w_eff, 0, v.R * nn * sizeof(float), s));
  // dW_in = g^T x: [N, TB] x [TB, I]
  gemm(N, I, TB, {v.g, N, tbn, true}, {v.x, I, tbi, false}, 0.f, {v.grad + v.off_win, I, P});
  if (v.any_io_cost) cuda::launch_io_cost_grads(v, s);  // + the input and readout costs' gradients
  if (v.dann && v.n_i_in > 0) {
    // Through U_eff = U_ee * mask_in - U_ei U_ie, before dW_in is masked (param_grads):
    // dU_ei = -dW_in U_ie^T: [N, I] x [I, n_i_in]; dU_ie = -U_ei^T dW_in: [n_i_in, N] x [N, I]
    minus_gemm(N, v.n_i_in, I, grad(v.off_win, I, false), param(v.off_uie, I, true), 0.f,
               {v.grad + v.off_uei, v.n_i_in, P});
    minus_gemm(v.n_i_in, I, N, param(v.off_uei, v.n_i_in, true), grad(v.off_win, I, false), 0.f,
               {v.grad + v.off_uie, I, P});
  }
  cuda::launch_bias_grads(v, s);
  cuda::launch_param_grads(v, s);
  if (v.dann) {
    // Through D = W_ee * mask - W_ei W_ie, with dD = alpha dW_eff from param_grads:
    // dW_ei = -dD W_ie^T: [N, N] x [N, n_i]; dW_ie = -W_ei^T dD: [n_i, N] x [N, N]
    minus_gemm(N, v.n_i, N, {v.d_dale, N, nn, false}, param(v.off_wie, N, true), 0.f, {v.grad + v.off_wei, v.n_i, P});
    minus_gemm(v.n_i, N, N, param(v.off_wei, v.n_i, true), {v.d_dale, N, nn, false}, 0.f, {v.grad + v.off_wie, N, P});
  }
  cuda::launch_norm_and_clip(v, s);
  cuda::launch_optimizer(v, s);
  cuda::launch_nonfinite_check(v, s);
}

void Bucket::launch_train() {
  if (!graph_) {
    cudaGraph_t graph = nullptr;
    DALESIM_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      record(true, false);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    DALESIM_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    const cudaError_t err = cudaGraphInstantiate(&graph_, graph, 0);
    cudaGraphDestroy(graph);
    DALESIM_CUDA_CHECK(err);
  }
  DALESIM_CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
}

void Bucket::launch_evaluate() { record(false, true); }

void Bucket::fetch_metrics(std::vector<StepMetrics>& out) {
  DALESIM_CUDA_CHECK(cudaMemcpyAsync(h_metrics_.get(), v_.metrics, h_metrics_.size() * sizeof(double),
                                     cudaMemcpyDeviceToHost, stream_));
  synchronize();
  for (int k = 0; k < v_.R; ++k) {
    const double* m = h_metrics_.get() + static_cast<std::size_t>(k) * cuda::kMetricCount;
    StepMetrics& s = out[members_[k]];
    s.loss = m[cuda::kLoss];
    s.accuracy = m[cuda::kAccuracy];
    s.alpha = m[cuda::kAlpha];
    s.grad_norm = m[cuda::kGradNorm];
    s.mean_rate = m[cuda::kMeanRate];
    s.dale_violation = m[cuda::kDaleViolation];
    s.dale_sign_match = m[cuda::kDaleSignMatch];
    s.dale_columns = m[cuda::kDaleColumns];
    s.alpha_grad = m[cuda::kAlphaGrad];
    s.grad_norm_dale = m[cuda::kGradNormDale];
    s.grad_norm_free = m[cuda::kGradNormFree];
    s.alpha_e = m[cuda::kAlphaE];
    s.alpha_i = m[cuda::kAlphaI];
    for (const CostField& c : kCostFields) s.*c.metric = m[cuda::kCost0 + static_cast<int>(c.cost)];
  }
}

void Bucket::fetch_diverged(std::vector<std::int64_t>& out) {
  std::vector<long long> d(v_.R);
  DALESIM_CUDA_CHECK(cudaMemcpyAsync(d.data(), v_.diverged_step, d.size() * sizeof(long long), cudaMemcpyDeviceToHost, stream_));
  synchronize();
  for (int k = 0; k < v_.R; ++k) out[members_[k]] = d[k];
}

void Bucket::fetch_params(std::vector<ReplicaModel>& models) {
  const std::size_t n = static_cast<std::size_t>(v_.R) * v_.P;
  std::vector<float> p(n), m1(n), m2(n);
  std::vector<long long> adam_steps(v_.R), diverged(v_.R);
  DALESIM_CUDA_CHECK(cudaMemcpyAsync(p.data(), v_.params, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  DALESIM_CUDA_CHECK(cudaMemcpyAsync(m1.data(), v_.m1, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  DALESIM_CUDA_CHECK(cudaMemcpyAsync(m2.data(), v_.m2, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  DALESIM_CUDA_CHECK(cudaMemcpyAsync(adam_steps.data(), v_.adam_steps, v_.R * sizeof(long long),
                                     cudaMemcpyDeviceToHost, stream_));
  DALESIM_CUDA_CHECK(cudaMemcpyAsync(diverged.data(), v_.diverged_step, v_.R * sizeof(long long),
                                     cudaMemcpyDeviceToHost, stream_));
  synchronize();
  for (int k = 0; k < v_.R; ++k) {
    ReplicaModel& m = models[members_[k]];
    const auto begin = static_cast<std::ptrdiff_t>(k) * v_.P, end = begin + v_.P;
    m.params.assign(p.begin() + begin, p.begin() + end);
    m.moment1.assign(m1.begin() + begin, m1.begin() + end);
    m.moment2.assign(m2.begin() + begin, m2.begin() + end);
    m.adam_steps = adam_steps[k];
    m.diverged_step = diverged[k];
  }
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaDeviceInfo& dev, GemmKernel gemm) : device_name_(dev.name), gemm_(gemm) {}
  std::string name() const override { return "cuda"; }
  std::string device() const override {
    return device_name_ + (gemm_ == GemmKernel::v2_cublas ? " (cuBLAS products)" : " (tiled products)");
  }

  void upload(const std::vector<ReplicaModel>& models) override {
    for (const ReplicaModel& m : models) {
      const TrainConfig& tc = m.cfg->train;
      if (tc.precision != Precision::f32)
        throw ConfigError("train.precision", "\"double\"", "\"float\" on the CUDA backend",
                          "double precision runs on --backend cpu");
      cuda::plan_kernel(tc.kernel, m.layout.N, m.cfg->task.batch);  // a forced kernel that cannot take the shape
    }
    models_ = &models;
    buckets_.clear();
  }

  void train_step(std::int64_t iteration, const std::vector<const Batch*>& batches,
                  std::vector<StepMetrics>* metrics) override {
    ensure_buckets(batches);
    for (auto& b : buckets_) {  // buckets run concurrently on their own streams
      b->stage(iteration, batches);
      b->launch_train();
    }
    if (metrics) {
      metrics->resize(models_->size());
      for (auto& b : buckets_) b->fetch_metrics(*metrics);
    }
    // No wait for the device here: the staging is double-buffered (Bucket::stage).
  }

  void evaluate(std::int64_t iteration, const std::vector<const Batch*>& batches,
                std::vector<StepMetrics>& metrics) override {
    ensure_buckets(batches);
    for (auto& b : buckets_) {
      b->stage(iteration, batches);
      b->launch_evaluate();
    }
    metrics.resize(models_->size());
    for (auto& b : buckets_) b->fetch_metrics(metrics);
  }

  void synchronize() override {
    for (auto& b : buckets_) b->synchronize();
  }

  void download(std::vector<ReplicaModel>& models) override {
    for (auto& b : buckets_) b->fetch_params(models);
  }

  std::vector<std::int64_t> diverged_steps() const override {
    std::vector<std::int64_t> out;
    if (models_)
      for (const ReplicaModel& m : *models_) out.push_back(m.diverged_step);  // before the first step: as uploaded
    for (auto& b : buckets_) b->fetch_diverged(out);
    return out;
  }

  std::string kernel_of(const ReplicaModel& m, int batch) const override {
    return cuda::to_string(cuda::plan_kernel(m.cfg->train.kernel, m.layout.N, batch).variant);
  }

  std::size_t device_bytes() const override {
    std::size_t n = 0;
    for (auto& b : buckets_) n += b->bytes();
    return n;
  }

 private:
  // Buckets are formed at the first step, when the batch shapes (T, B) are known.
  void ensure_buckets(const std::vector<const Batch*>& batches) {
    if (!buckets_.empty()) return;
    std::map<BucketKey, std::vector<int>> groups;
    for (std::size_t r = 0; r < models_->size(); ++r) {
      const ParamLayout& l = (*models_)[r].layout;
      groups[{static_cast<int>(l.arch), l.dann, l[Tensor::W_ei].cols, l[Tensor::U_ei].cols, l.has(Tensor::b_neg), l.N,
              l.I, l.O, batches[r]->T, batches[r]->B, l[Tensor::a].size(),
              static_cast<int>((*models_)[r].cfg->train.kernel)}]
          .push_back(static_cast<int>(r));
    }
    for (const auto& [key, members] : groups) {
      const cuda::KernelPlan plan =
          cuda::plan_kernel(static_cast<CudaKernel>(std::get<11>(key)), std::get<5>(key), std::get<9>(key));
      buckets_.push_back(std::make_unique<Bucket>(members, *models_, std::get<8>(key), std::get<9>(key), gemm_, plan));
    }
  }

  std::string device_name_;
  GemmKernel gemm_;
  const std::vector<ReplicaModel>* models_ = nullptr;
  std::vector<std::unique_ptr<Bucket>> buckets_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  const CudaDeviceInfo dev = query_cuda_device();
  if (!dev.usable) throw std::runtime_error("--backend cuda: no usable CUDA device (" + dev.reason + ")");
  DALESIM_CUDA_CHECK(cudaSetDevice(0));
  const GemmKernel gemm = options.cuda_gemm == "cublas" ? GemmKernel::v2_cublas : GemmKernel::v1_tiled;
  return std::make_unique<CudaBackend>(dev, gemm);
}

}  // namespace dalesim
