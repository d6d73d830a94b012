// The `dalesim` program end to end: exit codes, messages and files for good and bad input.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dalesim/backend.hpp"
#include "dalesim/history.hpp"
#include "dalesim/sweep.hpp"
#include "dalesim/task.hpp"
#include "test_paths.hpp"

namespace {

namespace fs = std::filesystem;

using dalesim::test::Outcome;
using dalesim::test::run_dalesim;

// Python's repr of a float: the shortest string that round-trips.
std::string repr_double(double d) {
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("dalesim_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

const char* kSmallSweep = R"(
name = "cli-small"
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
)";

TEST_F(Cli, ValidateReportsTheDemoSweep) {
  const Outcome o = run_dalesim("validate " + dalesim::test::source_dir() + "/data/sweeps/demo.toml");
  EXPECT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("36 replicas"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("estimated training memory"), std::string::npos);
}

TEST_F(Cli, RunWritesAFileThatInspectReads) {
  const std::string sweep = write("small.toml", kSmallSweep), out = path("small.h5");
  const Outcome o = run_dalesim("run " + sweep + " -o " + out + " --backend cpu --threads 2");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_NE(o.output.find("model.alpha_init=0.3"), std::string::npos) << o.output;  // the summary table
  const Outcome i = run_dalesim("inspect " + out);
  EXPECT_EQ(i.code, 0) << i.output;
  EXPECT_NE(i.output.find("4 replicas, status complete"), std::string::npos) << i.output;
  // Existing output: refused without --force, the file left untouched.
  const auto size = fs::file_size(out);
  const Outcome again = run_dalesim("run " + sweep + " -o " + out + " --backend cpu");
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
  EXPECT_EQ(fs::file_size(out), size);
  EXPECT_EQ(run_dalesim("run " + sweep + " -o " + out + " --backend cpu --force").code, 0);
}

TEST_F(Cli, BadSweepFilesExitTwoNamingTheKeyAndWriteNothing) {
  struct Case {
    std::string text, must_mention;
  };
  const Case cases[] = {
      {"[model]\nn_unitz = 8\n", "n_unitz"},
      {"[model]\nn_units = \"many\"\n", "model.n_units"},
      {"[model]\nalpha_init = 1.5\n", "1.5"},
      {"[task]\nname = \"adding\"\nT = 1\n", "task.T"},
      {"[sweep.grid]\n\"model.n_units\" = []\n", "model.n_units"},
      {"[model\narch = 3\n", "bad.toml"},
  };
  for (const Case& c : cases) {
    const std::string sweep = write("bad.toml", c.text), out = path("never.h5");
    const Outcome o = run_dalesim("run " + sweep + " -o " + out);
    EXPECT_EQ(o.code, 2) << c.text << "\n" << o.output;
    EXPECT_NE(o.output.find(c.must_mention), std::string::npos) << c.text << "\n" << o.output;
    EXPECT_FALSE(fs::exists(out)) << c.text;
    EXPECT_FALSE(fs::exists(out + ".progress")) << c.text;
    EXPECT_EQ(run_dalesim("validate " + sweep).code, 2) << c.text;
  }
  const Outcome missing = run_dalesim("run " + path("nope.toml") + " -o " + path("x.h5"));
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.output.find("nope.toml"), std::string::npos);
}

TEST_F(Cli, BadArgumentsAndUnreadableFiles) {
  EXPECT_EQ(run_dalesim("").code, 2);
  EXPECT_EQ(run_dalesim("frobnicate").code, 2);
  const std::string sweep = write("small.toml", kSmallSweep);
  EXPECT_EQ(run_dalesim("run " + sweep + " -o " + path("a.h5") + " --backend tpu").code, 2);
  const Outcome no_dir = run_dalesim("run " + sweep + " -o " + path("missing/dir/a.h5"));
  EXPECT_EQ(no_dir.code, 2) << no_dir.output;
  EXPECT_NE(no_dir.output.find("missing/dir"), std::string::npos);
  const Outcome text = run_dalesim("inspect " + write("notes.h5", "not an hdf5 file\n"));
  EXPECT_EQ(text.code, 2);
  EXPECT_NE(text.output.find("notes.h5"), std::string::npos) << text.output;
  const Outcome absent = run_dalesim("inspect " + path("absent.h5"));
  EXPECT_EQ(absent.code, 2);
  EXPECT_NE(absent.output.find("absent.h5"), std::string::npos);
}

TEST_F(Cli, CudaWithoutADeviceIsAClearError) {
  const dalesim::CudaDeviceInfo dev = dalesim::query_cuda_device();
  if (dev.usable) GTEST_SKIP() << "a CUDA device is usable: " << dev.name;
  const std::string sweep = write("small.toml", kSmallSweep);
  const Outcome o = run_dalesim("run " + sweep + " -o " + path("c.h5") + " --backend cuda");
  EXPECT_NE(o.code, 0);
  EXPECT_NE(o.output.find("cuda"), std::string::npos) << o.output;
  EXPECT_FALSE(fs::exists(path("c.h5")));
}

const char* kZipSweep = R"(
name = "cli-zip"
[model]
arch = "mix"
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
n_steps = 4
log_every = 2
checkpoint_every = 2
[sweep]
seeds = 2
[[sweep.zip]]
"train.lr" = [0.001, 0.02]
"model.rho" = [0.8, 1.3]
[sweep.grid]
"model.alpha_init" = [0.3, 0.7]
)";

TEST_F(Cli, ValidateAndInspectShowEverySweptAxis) {
  const std::string sweep = write("zip.toml", kZipSweep), out = path("zip.h5");
  const Outcome v = run_dalesim("validate " + sweep);
  ASSERT_EQ(v.code, 0) << v.output;
  EXPECT_NE(v.output.find("axes: model.alpha_init, (train.lr + model.rho, zipped), seed\n"), std::string::npos)
      << v.output;
  ASSERT_EQ(run_dalesim("run " + sweep + " -o " + out + " --backend cpu -q").code, 0);
  const Outcome i = run_dalesim("inspect " + out);
  ASSERT_EQ(i.code, 0) << i.output;
  std::istringstream lines(i.output);
  std::string line, header;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) {
    if (line.find("final loss") != std::string::npos) header = line;
    else if (!header.empty()) rows.push_back(line);
  }
  ASSERT_EQ(rows.size(), 8u) << i.output;
  for (const char* column : {" lr ", " model_rho ", " alpha_init ", " eval loss "})
    EXPECT_NE(header.find(column), std::string::npos) << column << " in " << header;
  // Replicas 0 and 2 differ only in the zipped lr and rho: their rows say so.
  const dalesim::RunFile f = dalesim::read_run_file(out);
  const auto* lr = f.numeric_column("lr");
  ASSERT_NE(lr, nullptr);
  for (int r = 0; r < 8; ++r) {
    char value[32];
    std::snprintf(value, sizeof value, " %.4g ", (*lr)[r]);
    EXPECT_NE(rows[r].find(value), std::string::npos) << rows[r];
  }
  EXPECT_NE(rows[0].find(" 0.001 "), std::string::npos) << rows[0];
  EXPECT_NE(rows[2].find(" 0.02 "), std::string::npos) << rows[2];
}

TEST_F(Cli, RunSaysPlainlyThatItUsesTheCpu) {
  const dalesim::CudaDeviceInfo dev = dalesim::query_cuda_device();
  if (dev.usable) GTEST_SKIP() << "a CUDA device is usable: " << dev.name;
  std::string one = kSmallSweep;
  one = one.substr(0, one.find("[sweep]"));  // one replica
  const std::string sweep = write("one.toml", one);
  const Outcome q = run_dalesim("run " + sweep + " -o " + path("one.h5") + " -q");
  ASSERT_EQ(q.code, 0) << q.output;
  EXPECT_NE(q.output.find("no GPU found; using the CPU; 1 replica, 7 steps\n"), std::string::npos) << q.output;
  EXPECT_NE(q.output.find(": 1 replica (0 diverged)"), std::string::npos) << q.output;
  for (const char* jargon : {"cudaError", "batch stream", "1 replicas", "(auto"})
    EXPECT_EQ(q.output.find(jargon), std::string::npos) << jargon << " in " << q.output;
  const Outcome v = run_dalesim("run " + sweep + " -o " + path("one.h5") + " -q -v --force");
  ASSERT_EQ(v.code, 0) << v.output;
  EXPECT_NE(v.output.find("CUDA device query: " + dev.reason), std::string::npos) << v.output;
  EXPECT_NE(v.output.find("1 sequence of training trials"), std::string::npos) << v.output;
}

TEST_F(Cli, SweptTaskRecordsEveryReplicasTaskAndItsEFraction) {
  const std::string sweep = write("tasks.toml", R"(
name = "cli-tasks"
[model]
n_units = 8
ei_ratio = 3.0
[task]
batch = 4
[train]
n_steps = 2
log_every = 1
checkpoint_every = 2
[sweep.grid]
"task.name" = ["adding", "go_nogo"]
)"),
                    out = path("tasks.h5");
  ASSERT_EQ(run_dalesim("run " + sweep + " -o " + out + " --backend cpu -q").code, 0);
  const dalesim::RunFile f = dalesim::read_run_file(out);
  const auto* task = f.string_column("task");
  const auto* params = f.string_column("task_params");
  const auto* conditions = f.string_column("conditions");
  ASSERT_TRUE(task && params && conditions);
  ASSERT_EQ((*task)[0], "adding");
  ASSERT_EQ((*task)[1], "go_nogo");
  for (const dalesim::TaskInfo& t : dalesim::task_registry())  // the adding task's defaults
    if (t.name == "adding")
      for (const dalesim::ParamSpec& p : t.params)
        EXPECT_NE((*params)[0].find(p.key + "=" + dalesim::format_value(p.default_value)), std::string::npos)
            << p.key << " in " << (*params)[0];
  for (const char* p : {"stimulus_ms=500.0", "delay_ms=500.0", "sigma=0.0", "target=\"mse\""})
    EXPECT_NE((*params)[1].find(p), std::string::npos) << p << " in " << (*params)[1];
  EXPECT_EQ((*conditions)[0], "");
  EXPECT_EQ((*conditions)[1], "no-go; go");
  // No base task ran: the resolved configuration does not name one.
  EXPECT_EQ(f.resolved_config.find("name = \"adding\""), std::string::npos) << f.resolved_config;
  EXPECT_NE(f.resolved_config.find("# name: swept"), std::string::npos) << f.resolved_config;
  // model.ei_ratio = 3 with 8 units: n_inh = ceil(8 / 4) = 2, so 6 of 8 excitatory.
  const auto* e = f.numeric_column("e_fraction");
  const auto* n_exc = f.numeric_column("n_exc");
  ASSERT_TRUE(e && n_exc);
  EXPECT_EQ((*n_exc)[0], 6);
  EXPECT_EQ((*e)[0], 0.75);
}

TEST_F(Cli, RelativeDataPathsAreReadFromTheSweepFolder) {
  fs::create_directories(dir_ / "sweeps" / "data");
  const std::string text = "[model]\nn_units = 4\n[task]\nname = \"file\"\npath = \"data/trials.h5\"\n";
  const std::string sweep = write("sweeps/file.toml", text);
  // Missing: the error names the folder searched, wherever dalesim runs.
  const Outcome o = run_dalesim("validate " + sweep);
  EXPECT_EQ(o.code, 2) << o.output;
  const std::string folder = fs::absolute(dir_ / "sweeps").lexically_normal().string();
  EXPECT_NE(o.output.find("task.path"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("read from the sweep file's folder " + folder), std::string::npos) << o.output;
  // Present beside the sweep file: that file is the one opened (here refused, as it is no HDF5 file),
  // not one under the current directory.
  std::ofstream(dir_ / "sweeps" / "data" / "trials.h5") << "not HDF5";
  const Outcome p = run_dalesim("validate " + sweep);
  EXPECT_EQ(p.code, 2) << p.output;
  EXPECT_NE(p.output.find("task.path = \"" + folder + "/data/trials.h5\": cannot open it as an HDF5 file"),
            std::string::npos)
      << p.output;
}

// The output opens in h5py (Debian's python3-h5py) with the values the engine's own reader sees.
TEST_F(Cli, OutputReadsInH5py) {
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with h5py not available (Debian package python3-h5py)";
  const std::string sweep = write("small.toml", kSmallSweep), out = path("py.h5");
  ASSERT_EQ(run_dalesim("run " + sweep + " -o " + out + " --backend cpu -q").code, 0);
  const std::string script = write("read.py",
                                   "import h5py, sys\n"
                                   "f = h5py.File(sys.argv[1], 'r')\n"
                                   "loss = f['history/loss']\n"
                                   "print(loss.shape[0], loss.shape[1], repr(float(loss[-1, 3])),\n"
                                   "      f.attrs['status'], f['replicas/alpha_init'][3])\n");
  FILE* pipe = popen(("/usr/bin/python3 " + script + " " + out + " 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[512] = {0};
  const size_t n = fread(buf, 1, sizeof buf - 1, pipe);
  pclose(pipe);
  const std::string got(buf, n);
  const dalesim::RunFile f = dalesim::read_run_file(out);
  const double last = (*f.history_metric("loss"))[(f.history_step.size() - 1) * 4 + 3];
  char expect[256];
  std::snprintf(expect, sizeof expect, "%zu 4 %s complete 0.7", f.history_step.size(), repr_double(last).c_str());
  EXPECT_EQ(got.substr(0, got.find('\n')), expect) << got;
}

TEST_F(Cli, BenchRunsTheCpuAndWritesJson) {
  const std::string json = path("bench.json");
  const Outcome o = run_dalesim("bench --config 3,16,4,6 --iterations 2 --backends cpu,cuda --json " + json);
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("R=3 N=16 B=4 T=6"), std::string::npos) << o.output;
  std::ifstream in(json);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"backend\": \"cpu\", \"kernel\": \"cpu\", \"threads\": "), std::string::npos) << text;
  EXPECT_NE(text.find("\"device\": \"CPU"), std::string::npos) << text;
  // The same-run sgemm reference beside the CPU row, and what the numbers depend on.
  EXPECT_EQ(text.find("\"reference_gflops\": null, \"reference_fraction\": null, \"peak_fraction\": null, \"device_mib\": 0"),
            std::string::npos) << text;
  EXPECT_NE(text.find("\"reference_fraction\": "), std::string::npos) << text;
  for (const char* key : {"\"cpu_model\": \"", "\"cpu_isa\": \"", "\"blas_core\": \"", "\"cpu_step_gemm\": \""})
    EXPECT_NE(text.find(key), std::string::npos) << key << "\n" << text;
  EXPECT_NE(text.find("\"validation_rel_diff\": 0"), std::string::npos) << text;  // 3 replicas == the first 3 alone
  if (std::system("/usr/bin/python3 -c 'import json' >/dev/null 2>&1") == 0)
    EXPECT_EQ(std::system(("/usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' " + json).c_str()), 0);
  EXPECT_EQ(run_dalesim("bench --config 3,16,4").code, 2);
  // A CUDA backend may force the training kernel (skipped here without a device); v3 is not one.
  const Outcome forced = run_dalesim("bench --config 3,16,4,6 --iterations 1 --backends cpu,cuda:v1,cuda:cublas:v2");
  ASSERT_EQ(forced.code, 0) << forced.output;
  EXPECT_NE(forced.output.find("cuda:cublas:v2"), std::string::npos) << forced.output;
  const Outcome v3 = run_dalesim("bench --config 3,16,4,6 --backends cuda:v3");
  EXPECT_EQ(v3.code, 2) << v3.output;
  EXPECT_NE(v3.output.find("cuda[:cublas][:v1|:v2]"), std::string::npos) << v3.output;
  // One CPU run per thread count; the table names them.
  const Outcome two = run_dalesim("bench --config 3,16,4,6 --iterations 1 --backends cpu --threads 1,2");
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("% of sgemm x 1"), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("% of sgemm x 2"), std::string::npos) << two.output;
}

// An independent implementation (PyTorch autograd) trains the exported replicas on the exported
// batches and must reproduce the engine's losses to 1e-4 relative.
TEST_F(Cli, TorchPeerAgreesWithTheEngine) {
  if (std::system("/usr/bin/python3 -c 'import torch, h5py' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with torch and h5py not available (Debian python3-torch, python3-h5py)";
  const std::string input = path("peer.h5");
  const Outcome e = run_dalesim("bench --config 3,12,5,8 --export-peers " + input + " --peer-iterations 6 --peer-backend cpu");
  ASSERT_EQ(e.code, 0) << e.output;
  const std::string cmd = "/usr/bin/python3 " + dalesim::test::source_dir() + "/bench/peers/torch_peer.py " + input +
                          " --device cpu --iterations 1 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[1024] = {0};
  const size_t n = fread(buf, 1, sizeof buf - 1, pipe);
  const int status = pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 0) << std::string(buf, n);
  EXPECT_NE(std::string(buf, n).find("agree=True"), std::string::npos) << std::string(buf, n);
}

TEST_F(Cli, TasksListsEveryTaskWithParameters) {
  const Outcome o = run_dalesim("tasks");
  EXPECT_EQ(o.code, 0);
  EXPECT_NE(o.output.find("adding"), std::string::npos);
  EXPECT_NE(o.output.find("perceptual_dm"), std::string::npos);
  EXPECT_NE(o.output.find("task.coherences"), std::string::npos);
}

}  // namespace
