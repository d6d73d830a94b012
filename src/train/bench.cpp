// `dalesim bench`: validate, warm up, then time the same training iterations on each backend.
#include "train/bench.hpp"

#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <thread>

#include "cpu/fixed_gemm.hpp"
#include "cpu/parallel.hpp"
#include "dalesim/backend.hpp"
#include "dalesim/model.hpp"
#include "dalesim/task.hpp"
#include "train/json.hpp"

namespace dalesim {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int resolve_threads(int threads) {
  return threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename();

CpuInfo query_cpu_info() {
  CpuInfo info;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      info.model = line.substr(line.find(':') + 2);
      break;
    }
  if (info.model.empty()) info.model = "unknown";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  info.isa = __builtin_cpu_supports("avx512f") ? "avx512" : __builtin_cpu_supports("avx2") ? "avx2"
           : __builtin_cpu_supports("avx") ? "avx" : "sse2";
#else
  info.isa = "non-x86";
#endif
  info.blas_core = openblas_get_corename();
  info.step_gemm = cpu::fixed_gemm_path();
  return info;
}

GemmTiming time_reference_sgemm(int N, int B, double seconds) {
  openblas_set_num_threads(1);
  std::vector<float> w(static_cast<size_t>(N) * N), x(static_cast<size_t>(N) * B), c(x.size());
  for (size_t k = 0; k < w.size(); ++k) w[k] = float(k % 13) / 13 - 0.5f;
  for (size_t k = 0; k < x.size(); ++k) x[k] = float(k % 7) / 7;
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, B, N, 1.0f, w.data(), N, x.data(), B, 0.0f, c.data(), B);
  };
  call();  // operands into cache, as the engine's are
  GemmTiming t;
  const auto t0 = Clock::now();
  do {
    for (int k = 0; k < 8; ++k) call();
    t.calls += 8;
  } while ((t.seconds = seconds_since(t0)) < seconds);
  return t;
}

std::vector<ReplicaConfig> bench_replicas(const BenchConfig& c) {
  std::vector<ReplicaConfig> cfgs(c.R);
  for (int r = 0; r < c.R; ++r) {
    ReplicaConfig& x = cfgs[r];
    x.id = r;
    x.model.arch = Arch::mix;
    x.model.n_units = c.N;
    x.model.e_fraction = 0.8;
    x.model.alpha_init = 0.5;
    x.task.name = "adding";
    x.task.batch = c.B;
    x.task.params["T"] = Value{std::int64_t{c.T}};
    x.train.optimizer = Optim::adam;
    x.train.lr = 1e-3;
    x.seed = r;
    x.init_seed = derive_seed(r, "init");
    x.data_seed = derive_seed(0, "data");  // one shared data stream: the backends are timed, not the task
    x.noise_seed = derive_seed(r, "noise");
  }
  return cfgs;
}

namespace {

// A bench backend name split: "cpu" or "cuda", the products and the forced kernel.
struct BenchBackend {
  bool ok = false, cpu = false;
  std::string gemm = "tiled";
  CudaKernel kernel = CudaKernel::auto_select;
};

BenchBackend parse_bench_backend(const std::string& name) {
  BenchBackend b;
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const std::size_t colon = name.find(':', start);
    parts.push_back(name.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts[0] == "cpu") {
    b.cpu = true;
    b.ok = parts.size() == 1;
    return b;
  }
  if (parts[0] != "cuda") return b;
  bool gemm_seen = false, kernel_seen = false;
  for (std::size_t k = 1; k < parts.size(); ++k) {
    if ((parts[k] == "cublas" || parts[k] == "tiled") && !gemm_seen) {
      b.gemm = parts[k];
      gemm_seen = true;
    } else if ((parts[k] == "v1" || parts[k] == "v2") && !kernel_seen) {
      b.kernel = parts[k] == "v1" ? CudaKernel::v1 : CudaKernel::v2;
      kernel_seen = true;
    } else {
      return b;
    }
  }
  b.ok = true;
  return b;
}

// One backend on one config: models, a shared batch, and the backend itself.
struct BenchRun {
  std::vector<ReplicaConfig> cfgs;
  std::vector<ReplicaModel> models;
  std::unique_ptr<Task> task;
  Batch batch;
  std::vector<const Batch*> batch_of;
  std::unique_ptr<Backend> backend;

  BenchRun(std::vector<ReplicaConfig> c, const std::string& backend_name, int threads) : cfgs(std::move(c)) {
    const BenchBackend which = parse_bench_backend(backend_name);
    for (auto& x : cfgs) x.train.kernel = which.kernel;
    task = make_task(cfgs.front().task, cfgs.front().model.dt);
    models.resize(cfgs.size());
    const int n_threads = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
    parallel_for(static_cast<int>(cfgs.size()), n_threads,
                 [&](int r) { models[r] = init_replica(cfgs[r], task->n_inputs(), task->n_outputs()); });
    BackendOptions opt;
    opt.n_threads = threads;
    opt.cuda_gemm = which.gemm;
    backend = which.cpu ? make_cpu_backend(opt) : make_cuda_backend(opt);
    backend->upload(models);
    batch_of.assign(cfgs.size(), &batch);
  }
  void step(std::int64_t it, std::vector<StepMetrics>* metrics) {
    task->generate(cfgs.front().data_seed, it, cfgs.front().task.batch, batch);
    backend->train_step(it, batch_of, metrics);
    backend->synchronize();  // an iteration is timed to its end on the device
  }
};

}  // namespace

bool valid_bench_backend(const std::string& name) { return parse_bench_backend(name).ok; }

std::string BenchConfig::label() const {
  return "R=" + std::to_string(R) + " N=" + std::to_string(N) + " B=" + std::to_string(B) + " T=" + std::to_string(T);
}

double bench_flops(const BenchConfig& c, int n_inputs, int n_outputs) {
  return 6.0 * c.R * c.B * c.T * (double(c.N) * c.N + double(c.N) * (n_inputs + n_outputs));
}

std::vector<BenchConfig> default_bench_configs(bool have_gpu) {
  const BenchConfig small{16, 64, 32, 50};
  if (!have_gpu) return {small};
  return {{256, 128, 64, 100}, {64, 512, 64, 100}, {1024, 64, 32, 50}, small};
}

std::vector<BenchRow> run_bench(const BenchOptions& options, std::ostream& log) {
  std::vector<BenchRow> rows;
  const CudaDeviceInfo dev = query_cuda_device();
  for (const BenchConfig& config : options.configs) {
    const auto cfgs = bench_replicas(config);
    const double flops = bench_flops(config, 2, 1);
    // The CPU reference losses of the first iteration for a few replicas, to validate the others.
    const int n_check = std::min(config.R, 4);
    std::vector<StepMetrics> reference;
    {
      BenchRun ref(std::vector<ReplicaConfig>(cfgs.begin(), cfgs.begin() + n_check), "cpu", options.threads.front());
      ref.step(0, &reference);
    }
    for (const std::string& name : options.backends) {
      const bool is_cpu = name == "cpu";
      // The CPU once per thread count; the GPU once (its host threads only initialise).
      const std::vector<int> thread_counts = is_cpu ? options.threads : std::vector<int>{options.threads.front()};
      for (const int threads : thread_counts) {
        BenchRow row;
        row.config = config;
        row.backend = name;
        row.threads = is_cpu ? std::min(resolve_threads(threads), config.R) : 0;
        log << "bench: " << config.label() << " on " << name;
        if (is_cpu) log << " (" << row.threads << " thread" << (row.threads == 1 ? "" : "s") << ")";
        log << " ..." << std::flush;
        if (!is_cpu && !dev.usable) {
          row.status = "skipped: no usable CUDA device (" + dev.reason + ")";
          log << " " << row.status << "\n";
          rows.push_back(row);
          continue;
        }
        std::unique_ptr<BenchRun> made;
        try {
          made = std::make_unique<BenchRun>(cfgs, name, threads);
        } catch (const ConfigError& e) {  // a forced kernel that cannot take this shape
          row.status = std::string("skipped: ") + e.what();
          log << " " << row.status << "\n";
          rows.push_back(row);
          continue;
        }
        BenchRun& run = *made;
        row.device = run.backend->device();
        row.kernel = run.backend->kernel_of(run.models.front(), config.B);
        std::vector<StepMetrics> first;
        const auto t_warm = Clock::now();
        run.step(0, &first);
        const double warm = seconds_since(t_warm);
        double worst = 0;
        for (int r = 0; r < n_check; ++r)
          worst = std::max(worst, std::fabs(first[r].loss - reference[r].loss) / std::max(1e-12, std::fabs(reference[r].loss)));
        row.validation_rel_diff = worst;
        if (worst > 1e-3) {
          row.status = "failed validation: loss differs from the CPU by " + std::to_string(worst) + " (relative)";
          log << " " << row.status << "\n";
          rows.push_back(row);
          continue;
        }
        int iterations = options.iterations;
        if (is_cpu) iterations = std::max(1, std::min(iterations, static_cast<int>(options.cpu_budget_s / std::max(warm, 1e-9))));
        if (!is_cpu) run.step(1, nullptr);  // graph capture happened at step 0; one more warm replay
        // On the CPU, a burst of the reference sgemm after every timed iteration: both see the same
        // machine (other load, clock), so their ratio means something on a busy one too.
        const double burst = std::min(0.05, std::max(0.005, 0.2 * warm));
        GemmTiming ref;
        double total = 0;
        for (int k = 0; k < iterations; ++k) {
          const auto t0 = Clock::now();
          run.step(2 + k, nullptr);
          total += seconds_since(t0);
          if (is_cpu) {
            const GemmTiming b = time_reference_sgemm(config.N, config.B, burst);
            ref.calls += b.calls;
            ref.seconds += b.seconds;
          }
        }
        row.iterations = iterations;
        row.seconds_per_iter = total / iterations;
        row.seq_steps_per_s = double(config.R) * config.B * config.T / row.seconds_per_iter;
        row.gflops = flops / row.seconds_per_iter / 1e9;
        row.peak_fraction = !is_cpu && dev.fp32_peak_gflops > 0 ? row.gflops / dev.fp32_peak_gflops : std::nan("");
        if (is_cpu) {
          row.reference_gflops = 2.0 * config.N * config.N * config.B * ref.calls / ref.seconds / 1e9 * row.threads;
          row.reference_fraction = row.gflops / row.reference_gflops;
        }
        row.device_mib = run.backend->device_bytes() / (1024.0 * 1024.0);
        row.status = "ok";
        char buf[160];
        if (is_cpu)
          std::snprintf(buf, sizeof buf, " %.4g s/iter, %.3g GFLOP/s, %.0f%% of sgemm x %d (%.3g GFLOP/s)\n",
                        row.seconds_per_iter, row.gflops, 100 * row.reference_fraction, row.threads, row.reference_gflops);
        else
          std::snprintf(buf, sizeof buf, " %.4g s/iter, %.3g GFLOP/s\n", row.seconds_per_iter, row.gflops);
        log << buf;
        rows.push_back(row);
      }
    }
  }
  return rows;
}

void print_bench_table(const std::vector<BenchRow>& rows, std::ostream& out) {
  const CpuInfo cpu = query_cpu_info();
  out << "CPU: " << cpu.model << " (" << cpu.isa << "), OpenBLAS " << cpu.blas_core << ", step products "
      << cpu.step_gemm << "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-26s  %-12s  %3s  %10s  %14s  %10s  %10s  %6s  %7s  %9s  %9s  %s\n", "config",
                "backend", "thr", "s/iter", "seq-steps/s", "GFLOP/s", "ref GFLOP/s", "%ref", "%peak", "dev MiB",
                "val.diff", "status");
  out << line;
  auto percent = [](double x) { return std::isnan(x) ? std::string("-") : std::to_string(std::lround(100 * x)) + "%"; };
  for (const BenchRow& r : rows) {
    const std::string threads = r.threads > 0 ? std::to_string(r.threads) : "-";
    if (r.status != "ok") {
      std::snprintf(line, sizeof line, "%-26s  %-12s  %3s  %s\n", r.config.label().c_str(), r.backend.c_str(),
                    threads.c_str(), r.status.c_str());
    } else {
      char ref[32] = "-";
      if (!std::isnan(r.reference_gflops)) std::snprintf(ref, sizeof ref, "%.4g", r.reference_gflops);
      std::snprintf(line, sizeof line, "%-26s  %-12s  %3s  %10.4g  %14.4g  %10.4g  %10s  %6s  %7s  %9.1f  %9.2g  %s\n",
                    r.config.label().c_str(), r.backend.c_str(), threads.c_str(), r.seconds_per_iter, r.seq_steps_per_s,
                    r.gflops, ref, percent(r.reference_fraction).c_str(), percent(r.peak_fraction).c_str(),
                    r.device_mib, r.validation_rel_diff, r.status.c_str());
    }
    out << line;
  }
}

namespace {
std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}
}  // namespace

void write_bench_json(const std::vector<BenchRow>& rows, const std::string& command, std::ostream& out) {
  const CudaDeviceInfo dev = query_cuda_device();
  const CpuInfo cpu = query_cpu_info();
  out << "{\n  \"command\": \"" << json_escape(command) << "\",\n  \"cpu_model\": \"" << json_escape(cpu.model)
      << "\",\n  \"cpu_isa\": \"" << cpu.isa << "\",\n  \"cpu_cores\": " << std::thread::hardware_concurrency()
      << ",\n  \"blas_core\": \"" << json_escape(cpu.blas_core) << "\",\n  \"cpu_step_gemm\": \""
      << json_escape(cpu.step_gemm) << "\",\n  \"cuda_device\": \""
      << json_escape(dev.usable ? dev.name : "none: " + dev.reason) << "\",\n  \"fp32_peak_gflops\": "
      << json_number(dev.usable ? dev.fp32_peak_gflops : std::nan(""))
      << ",\n  \"flop_count\": \"6 R B T (N^2 + N (I + O)), I = 2, O = 1\",\n  \"reference\": \"single-threaded "
         "OpenBLAS sgemm of N x N by N x B, times threads\",\n  \"rows\": [\n";
  for (size_t k = 0; k < rows.size(); ++k) {
    const BenchRow& r = rows[k];
    out << "    {\"R\": " << r.config.R << ", \"N\": " << r.config.N << ", \"B\": " << r.config.B << ", \"T\": " << r.config.T
        << ", \"backend\": \"" << r.backend << "\", \"kernel\": \"" << r.kernel << "\", \"threads\": " << r.threads << ", \"device\": \""
        << json_escape(r.device) << "\", \"status\": \"" << json_escape(r.status) << "\", \"iterations\": " << r.iterations
        << ", \"seconds_per_iter\": " << json_number(r.seconds_per_iter) << ", \"seq_steps_per_s\": " << json_number(r.seq_steps_per_s)
        << ", \"gflops\": " << json_number(r.gflops) << ", \"reference_gflops\": " << json_number(r.reference_gflops)
        << ", \"reference_fraction\": " << json_number(r.reference_fraction)
        << ", \"peak_fraction\": " << json_number(r.peak_fraction) << ", \"device_mib\": " << json_number(r.device_mib)
        << ", \"validation_rel_diff\": " << json_number(r.validation_rel_diff) << "}" << (k + 1 < rows.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
}

}  // namespace dalesim
