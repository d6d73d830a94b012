// Every class of bad input to `dalesim run` (docs/errors.md), through the real binary where the
// class is answered there: exit code 2, a message naming the key, the value and what is allowed,
// and nothing left on disk (no output file, no OUT.h5.progress, no stray file).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <utime.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dalesim/sweep.hpp"
#include "io/h5.hpp"
#include "sweep/preflight.hpp"
#include "test_h5_compare.hpp"
#include "test_paths.hpp"
#include "test_tasks_util.hpp"

namespace dalesim {
namespace {

namespace fs = std::filesystem;
using test::Outcome;
using test::run_dalesim;

// A valid sweep of one tiny replica; the cases below append to it or replace it.
const std::string kTiny = R"(name = "tiny"
[model]
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
n_steps = 3
log_every = 1
checkpoint_every = 3
)";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class BadInput : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }
  std::string path(const std::string& name) const { return dir_ / name; }

  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(dir_.str())) names.insert(e.path().string());
    return names;
  }

  // Runs `dalesim ARGS` and checks a refusal of bad input: exit code 2 (never 0 or 1), each of
  // `parts` in the message, no `out` nor `out.progress`, and no new file in the test directory.
  Outcome expect_refused(const std::string& args, const std::string& out, const std::vector<std::string>& parts,
                         const std::string& env = "") {
    const std::set<std::string> before = listing();
    const Outcome o = run_dalesim(args, env);
    EXPECT_EQ(o.code, 2) << args << "\n" << o.output;
    for (const std::string& p : parts)
      EXPECT_NE(o.output.find(p), std::string::npos) << "missing: " << p << "\n" << o.output;
    EXPECT_NE(o.output.find("dalesim: error: "), std::string::npos) << o.output;
    EXPECT_FALSE(fs::exists(out)) << args;
    EXPECT_FALSE(fs::exists(out + ".progress")) << args;
    EXPECT_EQ(listing(), before) << "a file was left behind by: " << args;
    return o;
  }

  // A sweep file refused by both `run` and `validate`, naming every one of `parts`.
  void expect_sweep_refused(const std::string& text, const std::vector<std::string>& parts) {
    SCOPED_TRACE(text);
    const std::string sweep = write("bad.toml", text), out = path("never.h5");
    expect_refused("run " + sweep + " -o " + out + " --backend cpu --threads 1", out, parts);
    const Outcome v = run_dalesim("validate " + sweep);
    EXPECT_EQ(v.code, 2) << v.output;
  }

  test::TempDir dir_{"bad_input"};
};

TEST_F(BadInput, UnknownKey) {
  expect_sweep_refused(kTiny + "[optim]\nlr = 0.1\n",
                       {"optim.lr = 0.1", "allowed: a key listed in docs/sweep-format.md", "bad.toml:13: unknown key"});
  expect_sweep_refused("[model]\nn_unitz = 8\n",
                       {"model.n_unitz = 8", "bad.toml:2: unknown key; did you mean model.n_units?"});
  expect_sweep_refused("[task]\nname = \"adding\"\nTT = 4\n",
                       {"task.TT = 4", "allowed: parameters of task \"adding\": T, positions", "did you mean task.T?"});
  expect_sweep_refused("[sweep]\ngrids = 3\n", {"sweep.grids = 3", "did you mean sweep.grid?"});
}

TEST_F(BadInput, WrongType) {
  expect_sweep_refused("[model]\nn_units = \"many\"\n", {"model.n_units = \"many\"", "allowed: int in [2, 4096]",
                                                         "bad.toml:2: expected int, got string"});
  expect_sweep_refused("[model]\nn_units = 8.5\n", {"model.n_units = 8.5", "allowed: int in [2, 4096]"});
  expect_sweep_refused("[train]\nlr = \"fast\"\n", {"train.lr = \"fast\"; allowed: float in (0, 1000000]", "bad.toml:2"});
  expect_sweep_refused("[model]\narch = 3\n", {"model.arch = 3", "allowed: \"free\", \"colei\", \"mix\", \"dann\"",
                                               "expected string, got int"});
}

TEST_F(BadInput, OutOfRangeValue) {
  expect_sweep_refused("[model]\nalpha_init = 1.5\n",
                       {"model.alpha_init = 1.5; allowed: float in [0, 1] (", "bad.toml:2)"});
  expect_sweep_refused("[model]\nn_units = 100000\n", {"model.n_units = 100000", "allowed: int in [2, 4096]"});
  expect_sweep_refused("[task]\nname = \"adding\"\nT = 1\n", {"task.T = 1; allowed: int in [2, 100000]"});
  expect_sweep_refused("[sweep.grid]\n\"train.lr\" = [0.01, -1.0]\n",
                       {"sweep.grid.train.lr = -1.0; allowed: float in (0, 1000000]"});
}

// Integer keys are range-checked in 64 bits before the field narrows them: 2^32 + 3 steps used to
// train 3, 2^31 none, and log_every = 2^32 divided by zero.
TEST_F(BadInput, IntegerKeysAreCheckedBeforeNarrowing) {
  expect_sweep_refused("[train]\nn_steps = 4294967299\n", {"train.n_steps = 4294967299; allowed: int in [1, 2147483647]"});
  expect_sweep_refused("[train]\nn_steps = 1000000000000\n", {"train.n_steps = 1000000000000", "int in [1, 2147483647]"});
  expect_sweep_refused("[train]\nlog_every = 4294967296\n", {"train.log_every = 4294967296", "int in [1, 2147483647]"});
  expect_sweep_refused("[train]\ncheckpoint_every = 4294967296\n", {"train.checkpoint_every = 4294967296"});
  expect_sweep_refused("[model]\nfree_init = \"lowrank\"\nrank = 4294967296\n", {"model.rank = 4294967296"});
  // DANN's ceil(n_units / ei_ratio) interneurons, counted in double.
  expect_sweep_refused("[model]\narch = \"dann\"\nei_ratio = 1e-9\n",
                       {"model.ei_ratio = 1e-09", "at most 4096 DANN interneurons"});
}

// Values that can only overflow (to an infinite weight at init, or an infinite update) are refused
// with their range; before, they reached LAPACK as infinities (a crash or an endless loop).
TEST_F(BadInput, ValuesThatCanOnlyOverflowAreRefused) {
  expect_sweep_refused("[model]\ng = 1e39\n", {"model.g = 1e+39; allowed: float in (0, 1000]"});
  expect_sweep_refused("[model]\nrho = 1e39\n", {"model.rho = 1e+39; allowed: float in (0, 1000]"});
  expect_sweep_refused("[model]\np_ii = 5e-324\n", {"model.p_ii", "allowed: float in [1e-06, 1]"});
  expect_sweep_refused("[train]\nlr = inf\n", {"train.lr = inf", "allowed: float in (0, 1000000]"});
  expect_sweep_refused("[train]\neps = 1e300\n", {"train.eps = 1e+300; allowed: float in (0, 1]"});
  expect_sweep_refused("[train]\nweight_decay = inf\n", {"train.weight_decay = inf", "float in [0, 1000]"});
}

// A replica whose weights overflow (EG at lr 1e5, no clipping) with checkpoints every step: it used
// to reach LAPACK with infinities (an error exit, heap corruption or an endless loop in dgebal).
// Now it is diverged at that step, its diagnostics are NaN, and the others finish.
TEST_F(BadInput, OverflowingReplicaDivergesAndTheSweepFinishes) {
  const std::string sweep = write("overflow.toml", R"(name = "overflow"
[model]
arch = "mix"
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
rule = "eg"
clip = 0.0
n_steps = 6
log_every = 1
checkpoint_every = 1
[sweep.grid]
"train.lr" = [0.01, 100000.0, 0.02]
)");
  const std::string out = path("overflow.h5");
  const Outcome o = run_dalesim("run " + sweep + " -o " + out + " --backend cpu --threads 2 -q");
  ASSERT_EQ(o.code, 0) << o.output;
  const Outcome i = run_dalesim("inspect " + out);
  EXPECT_NE(i.output.find("status complete"), std::string::npos) << i.output;
  EXPECT_NE(i.output.find("diverged"), std::string::npos) << i.output;
  const h5::File f = h5::File::open_read_only(out);
  const std::vector<double> rho = f.open_group("checkpoints").open_dataset("spectral_radius").read_doubles();
  int nan = 0, finite = 0;
  for (double x : rho) (std::isnan(x) ? nan : finite) += 1;
  EXPECT_GT(nan, 0) << "the diverged replica's later checkpoints";
  EXPECT_GT(finite, 0);
}

// Messages that used to mislead: a time constant under the default step blamed model.dt; a bad
// --threads printed a 309-digit range.
TEST_F(BadInput, MessagesNameWhatWasWritten) {
  expect_sweep_refused("[model]\ntau_e = 5e-324\n", {"model.tau_e = 5e-324; allowed: >= model.dt = 20.0", "bad.toml:2"});
  expect_sweep_refused("[model]\ndt = 500.0\n", {"model.dt = 500.0; allowed: <= min(model.tau_e, model.tau_i)"});
  // An invisible character in a quoted key is shown, so the key that looks right can be told apart.
  expect_sweep_refused("[model]\n\"n_\xe2\x80\x8bunits\" = 8\n", {"model.n_\\u{200B}units = 8", "did you mean model.n_units?"});
  // A list where a number is expected, as written; and a nested list in a grid, named as such.
  expect_sweep_refused("[model]\nn_units = [8]\n",
                       {"model.n_units = [8]; allowed: int in [2, 4096]", "expected int, got list; to sweep a key"});
  expect_sweep_refused("[sweep.grid]\n\"model.n_units\" = [[8, 16]]\n",
                       {"sweep.grid.model.n_units = [8, 16]", "nested lists are not allowed"});
  const std::string sweep = write("tiny.toml", kTiny), out = path("never.h5");
  // An output name too long for the copies beside it (NAME.partial-a): refused up front.
  const std::string long_name = path(std::string(243, 'o') + ".h5");  // 246 bytes: OUT.progress fits, OUT.partial-a not
  expect_refused("run " + sweep + " -o " + long_name, long_name, {"allowed: a file name of at most 245 bytes"});
  for (const std::string bad : {"-1", "abc"}) {
    const Outcome o = run_dalesim("run " + sweep + " -o " + out + " --threads " + bad);
    EXPECT_NE(o.code, 0) << o.output;
    EXPECT_NE(o.output.find("--threads: Value " + bad + " not in range 0 to 1024"), std::string::npos) << o.output;
    EXPECT_LT(o.output.size(), 200u) << o.output;
    EXPECT_FALSE(fs::exists(out));
  }
}

// A damaged output (here: the object header of a history dataset flipped) is refused by `report` as by `inspect`, with
// exit 2 and no page written, instead of a page drawn from whatever still reads.
TEST_F(BadInput, ReportRefusesAFileInspectRefuses) {
  const std::string sweep = write("tiny.toml", kTiny), out = path("run.h5");
  ASSERT_EQ(run_dalesim("run " + sweep + " -o " + out + " --backend cpu --threads 1 -q").code, 0);
  test::flip_object_header(out, "history/loss");
  EXPECT_EQ(run_dalesim("inspect " + out).code, 2);
  const Outcome r = run_dalesim("report " + out + " -o " + path("r.html"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("does not read whole"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("r.html")));
}

// A disk too small for the file, or full at the first copy: a short message naming the cause (no
// space) and what to do, never an HDF5 stack or "Input/output error"; nothing left behind. Needs
// root to mount a small tmpfs; skipped, saying so, where mounting is not allowed.
TEST_F(BadInput, TinyDiskSaysNoSpaceAndWhatToDo) {
  const std::string sweep = write("overflow.toml", "name = \"tiny-disk\"\n[model]\nn_units = 8\n[task]\nname = \"adding\"\n"
                                                   "T = 6\nbatch = 4\n[train]\nn_steps = 6\nlog_every = 1\ncheckpoint_every = 1\n"
                                                   "[sweep]\nseeds = 3\n");
  const std::string mnt = path("tiny");
  fs::create_directories(mnt);
  for (const char* size : {"40k", "100k"}) {
    if (std::system(("mount -t tmpfs -o size=" + std::string(size) + " tmpfs " + mnt + " 2>/dev/null").c_str()) != 0)
      GTEST_SKIP() << "cannot mount a tmpfs here (needs root and the mount capability)";
    const std::string out = mnt + "/o.h5";
    const Outcome o = run_dalesim("run " + sweep + " -o " + out + " --backend cpu --threads 1 -q");
    EXPECT_EQ(o.code, 1) << size << ": " << o.output;
    EXPECT_NE(o.output.find("No space left on device"), std::string::npos) << size << ": " << o.output;
    EXPECT_NE(o.output.find("make room"), std::string::npos) << size << ": " << o.output;
    EXPECT_EQ(o.output.find("H5F"), std::string::npos) << size << ": " << o.output;
    EXPECT_FALSE(fs::exists(fs::symlink_status(out))) << size;
    EXPECT_EQ(std::system(("umount " + mnt).c_str()), 0);
  }
}

TEST_F(BadInput, EmptyGrid) {
  expect_sweep_refused(kTiny + "[sweep.grid]\n\"model.n_units\" = []\n",
                       {"sweep.grid.model.n_units = []", "allowed: a non-empty list of values", "empty grid list"});
  expect_sweep_refused(kTiny + "[sweep.grid]\n",
                       {"sweep.grid", "allowed: a table of key = non-empty list of values", "empty grid"});
  expect_sweep_refused(kTiny + "[[sweep.zip]]\n", {"sweep.zip", "empty zip"});
  expect_sweep_refused(kTiny + "[sweep]\nseeds = 0\n", {"sweep.seeds = 0", "allowed: an int n >= 1"});
  expect_sweep_refused(kTiny + "[sweep]\nseeds = []\n", {"sweep.seeds = []", "allowed: an int n >= 1"});
}

TEST_F(BadInput, HugeGridOverTheReplicaCap) {
  std::string lrs;
  for (int k = 1; k <= 1001; ++k) lrs += (k > 1 ? ", " : "") + std::to_string(k * 1e-6);
  expect_sweep_refused(kTiny + "[sweep]\nseeds = 1000\n[sweep.grid]\n\"train.lr\" = [" + lrs + "]\n",
                       {"sweep = more than 1000000 replicas", "allowed: at most 1000000 replicas"});
}

// The memory check itself (src/sweep/preflight.cpp), against the environment override and the
// real host memory.
TEST_F(BadInput, HugeGridOverTheMemoryEstimate) {
  const Sweep sweep = parse_sweep(kTiny + "[sweep]\nseeds = 6\n", "tiny.toml");
  std::size_t at = 99;
  double one = 0;
  const double total = estimate_sweep_bytes(sweep, &at, &one);
  EXPECT_GT(one, 0);
  EXPECT_DOUBLE_EQ(total, 6 * one);
  EXPECT_EQ(at, 0u);

  auto refusal = [&](const Sweep& s, const std::string& limit) {
    ::setenv("DALESIM_MEMORY_LIMIT_BYTES", limit.c_str(), 1);
    try {
      check_memory_fits(s, "cpu");
    } catch (const ConfigError& e) {
      ::unsetenv("DALESIM_MEMORY_LIMIT_BYTES");
      return std::string(e.key()) + " | " + e.value() + " | " + e.allowed() + " | " + e.hint();
    }
    ::unsetenv("DALESIM_MEMORY_LIMIT_BYTES");
    return std::string("(fits)");
  };
  EXPECT_EQ(refusal(sweep, std::to_string(static_cast<long long>(total))), "(fits)");
  // 6 replicas in 2.5 replicas' worth: shards of at most 2, so N >= 3.
  const long long limit = static_cast<long long>(2.5 * one);
  const std::string e = refusal(sweep, std::to_string(limit));
  EXPECT_EQ(e.rfind("sweep | 6 replicas needing an estimated " + format_bytes(total), 0), 0u) << e;
  EXPECT_NE(e.find("| at most " + format_bytes(static_cast<double>(limit)) +
                   ", the DALESIM_MEMORY_LIMIT_BYTES = " + std::to_string(limit) + " |"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("--shard K/N with N >= 3"), std::string::npos) << e;
  const std::string single = refusal(sweep, std::to_string(static_cast<long long>(one / 2)));
  EXPECT_NE(single.find("replica 0 (model.n_units = 8, task.batch = 4, 6 steps) needs an estimated"), std::string::npos)
      << single;
  EXPECT_NE(single.find("one replica alone does not fit, so --shard cannot help"), std::string::npos) << single;
  for (const std::string bad : {"lots", "-5", "0", "12GB"})
    EXPECT_EQ(refusal(sweep, bad).rfind("DALESIM_MEMORY_LIMIT_BYTES | " + bad + " | a positive integer", 0), 0u) << bad;

  // The largest shape the keys allow needs hundreds of TiB: more than any host has.
  ::unsetenv("DALESIM_MEMORY_LIMIT_BYTES");
  const Sweep absurd =
      parse_sweep("[model]\nn_units = 4096\n[task]\nname = \"adding\"\nT = 100000\nbatch = 65536\n", "absurd.toml");
  try {
    check_memory_fits(absurd, "cpu");
    FAIL() << "a replica of 4096 units, batch 65536 and 100000 steps fit in host memory";
  } catch (const ConfigError& err) {
    EXPECT_EQ(err.key(), "sweep");
    EXPECT_NE(err.value().find("293.1 TiB"), std::string::npos) << err.what();
    EXPECT_NE(err.allowed().find("memory"), std::string::npos) << err.what();
  }
  const MemoryBudget host = available_memory("cpu");
  EXPECT_GT(host.bytes, 1 << 20) << host.source;
  EXPECT_NE(host.source.find("memory"), std::string::npos);
}

TEST_F(BadInput, DuplicateAxes) {
  expect_sweep_refused(kTiny + "[sweep.grid]\n\"model.n_units\" = [8, 16]\n[[sweep.zip]]\n\"model.n_units\" = [4]\n",
                       {"sweep.zip.model.n_units = [4]", "allowed: each key on at most one axis", "bad.toml:15",
                        "duplicate axis model.n_units"});
  // Quoted and bare spellings of one key.
  expect_sweep_refused(kTiny + "[sweep.grid]\n\"model.n_units\" = [8]\nmodel.n_units = [16]\n",
                       {"sweep.grid.model.n_units = [16]", "duplicate axis model.n_units"});
  expect_sweep_refused(kTiny + "[sweep]\nseeds = 2\n[sweep.grid]\nseed = [3, 4]\n",
                       {"duplicate axis seed", "each key on at most one axis"});
  // A key written twice is a TOML error: file, line and column, and the key.
  expect_sweep_refused("[model]\nn_units = 8\nn_units = 9\n",
                       {"bad.toml:3:", "valid TOML syntax", "cannot redefine existing integer 'n_units'"});
}

TEST_F(BadInput, MissingOrCorruptDatasetFile) {
  const std::string out = path("never.h5");
  auto refuse = [&](const std::string& task_toml, const std::vector<std::string>& parts) {
    SCOPED_TRACE(task_toml);
    const std::string sweep =
        write("data.toml", "[model]\nn_units = 8\n[task]\n" + task_toml + "[train]\nn_steps = 2\n");
    expect_refused("run " + sweep + " -o " + out + " --backend cpu --threads 1", out, parts);
  };
  // seqmnist: a directory without the files, files that are not IDX, a truncated IDX file.
  const std::string mnist = path("mnist");
  refuse("name = \"seqmnist\"\ndir = \"" + mnist + "\"\n",
         {"seqmnist: neither " + mnist + "/train-images-idx3-ubyte.gz nor", "task.dir = \"" + mnist + "\"",
          "dataset-fashion-mnist"});
  fs::create_directories(mnist);
  test::write_toy_mnist(mnist, 40, 10, 8, 10, false, false);
  const std::string images = mnist + "/train-images-idx3-ubyte", whole = read_bytes(images);
  write("mnist/train-images-idx3-ubyte", "GIF89a, not an IDX file\n");
  refuse("name = \"seqmnist\"\ndir = \"" + mnist + "\"\nvalidation = 5\n",
         {"seqmnist (task.dir = \"" + mnist + "\"): IDX file " + images + " has the wrong magic 47 49 46 38",
          "expected 00 00 08 <rank>"});
  write("mnist/train-images-idx3-ubyte", whole.substr(0, whole.size() - 100));
  refuse("name = \"seqmnist\"\ndir = \"" + mnist + "\"\nvalidation = 5\n",
         {"IDX file " + images +
          " is truncated: its header declares 40 x 8 x 10 = 3200 bytes of data, the file holds 3100"});

  // file: a missing path, a file that is not HDF5, an HDF5 file of the wrong layout.
  refuse("name = \"file\"\npath = \"" + path("absent.h5") + "\"\n",
         {"file task: task.path = \"" + path("absent.h5") + "\": no such file"});
  write("notes.h5", "trial,stim,out\n1,0.5,1\n");
  refuse("name = \"file\"\npath = \"" + path("notes.h5") + "\"\n",
         {"task.path = \"" + path("notes.h5") + "\": cannot open it as an HDF5 file", "Not an HDF5 file"});
  {
    h5::silence_errors();
    h5::File f = h5::File::create(path("flat.h5"), true);
    const std::vector<float> x(4 * 3, 1.f);
    f.create_dataset("stim", H5T_IEEE_F32LE, h5::Dataspace::simple({4, 3})).write(H5T_NATIVE_FLOAT, x.data());
    f.close();
  }
  refuse("name = \"file\"\npath = \"" + path("flat.h5") + "\"\n",
         {"task.path = \"" + path("flat.h5") + "\": no dataset \"inputs\" for the inputs (the root holds: stim)"});
  refuse("name = \"file\"\npath = \"" + path("flat.h5") + "\"\ninputs = \"stim\"\n",
         {"dataset \"stim\" has shape [4, 3]: expected [trial, T, I]"});
}

TEST_F(BadInput, UnwritableOutputPath) {
  const std::string sweep = write("tiny.toml", kTiny);
  const std::string run = "run " + sweep + " --backend cpu --threads 1 -o ";
  expect_refused(
      run + path("missing/dir/out.h5"), path("missing/dir/out.h5"),
      {"--output = " + path("missing/dir/out.h5"), "allowed: a file in an existing directory", path("missing/dir")});
  write("afile", "a regular file\n");
  expect_refused(run + path("afile/out.h5"), path("afile/out.h5"),
                 {"--output = " + path("afile/out.h5"), "allowed: a file in an existing directory"});
  EXPECT_EQ(read_bytes(path("afile")), "a regular file\n");
}

// check_output_path itself (src/sweep/preflight.cpp): the cases the directory test alone misses.
// Tests run as root, for whom permission bits block nothing: /proc refuses new files to root too.
TEST_F(BadInput, OutputPathProbe) {
  auto refusal = [](const std::string& p, bool force) {
    try {
      check_output_path(p, force);
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key(), "--output");
      if (!p.empty()) EXPECT_EQ(e.value(), p);
      return e.allowed() + " | " + e.hint();
    }
    return std::string("(accepted)");
  };
  const std::set<std::string> before = listing();
  EXPECT_EQ(refusal(path("new.h5"), false), "(accepted)");
  EXPECT_EQ(
      refusal("/proc/dalesim_out.h5", true),
      "a file in a directory where files can be created | cannot create a file in /proc: No such file or directory");
  EXPECT_EQ(refusal(dir_.str(), true), "a file path, not a directory | " + dir_.str() +
                                           " is a directory; name a file inside it, e.g. " + path("out.h5"));
  write("afile", "x");
  EXPECT_EQ(refusal(path("afile/out.h5"), false),
            "a file in an existing directory | " + path("afile") + " is a file, not a directory");
  EXPECT_EQ(refusal(path("afile/sub/out.h5"), false),
            "a file in an existing directory | " + path("afile") + " is a file, not a directory");
  EXPECT_EQ(refusal(path("no/such/out.h5"), false),
            "a file in an existing directory | directory " + path("no/such") + " does not exist");
  EXPECT_EQ(refusal(path("afile"), false), "a path that does not exist yet | pass --force to overwrite it");
  EXPECT_EQ(refusal(path("afile"), true), "(accepted)");
  EXPECT_EQ(refusal("", false), "the path of the HDF5 file to write | ");
  std::set<std::string> after = before;
  after.insert(path("afile"));
  EXPECT_EQ(listing(), after) << "the probe file was left behind";
  EXPECT_EQ(read_bytes(path("afile")), "x");
}

TEST_F(BadInput, ExistingOutputWithoutForce) {
  const std::string sweep = write("tiny.toml", kTiny), out = write("out.h5", "results of last week\n");
  const struct utimbuf old_times { 1000000000, 1000000000 };  // 2001: any touch would show
  ASSERT_EQ(::utime(out.c_str(), &old_times), 0);
  const std::set<std::string> before = listing();
  const Outcome o = run_dalesim("run " + sweep + " -o " + out + " --backend cpu --threads 1");
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(
      o.output.find("--output = " + out + "; allowed: a path that does not exist yet (pass --force to overwrite it)"),
      std::string::npos)
      << o.output;
  EXPECT_EQ(read_bytes(out), "results of last week\n");
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 1000000000);
  EXPECT_FALSE(fs::exists(out + ".progress"));
  EXPECT_EQ(listing(), before);
}

// A sweep "file" that is not a regular file, or one too large to be a sweep, is refused before a
// byte is read: /dev/zero used to fill memory, a FIFO without a writer to block forever.
TEST_F(BadInput, SweepFileThatIsNotARegularFileOrTooLarge) {
  const std::string out = path("never.h5");
  expect_refused("run /dev/zero -o " + out, out, {"sweep file = /dev/zero", "it is a device"});
  const std::string fifo = path("fifo.toml");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  expect_refused("run " + fifo + " -o " + out, out, {"sweep file = " + fifo, "it is a FIFO"});
  expect_refused("run " + dir_.str() + " -o " + out, out, {"it is a directory"});
  fs::remove(fifo);
  const std::string big = write("big.toml", kTiny + "# " + std::string(1 << 20, 'x') + "\n");
  expect_refused("run " + big + " -o " + out, out, {"sweep file = " + big, "at most 1 MiB"});
}

// -o naming the sweep file itself (or a link to it) is refused, --force or not: the sweep file
// used to be replaced by HDF5 data.
TEST_F(BadInput, OutputThatIsTheSweepFile) {
  const std::string sweep = write("tiny.toml", kTiny), link = path("link.h5");
  fs::create_symlink(sweep, link);
  for (const std::string& out : {sweep, link}) {
    const Outcome o = run_dalesim("run " + sweep + " -o " + out + " --force --backend cpu --threads 1");
    EXPECT_EQ(o.code, 2) << o.output;
    EXPECT_NE(o.output.find("allowed: a path other than the sweep file"), std::string::npos) << o.output;
    EXPECT_EQ(read_bytes(sweep), kTiny);
  }
}

// Symlinks planted at the names of the copies (OUT.h5.partial-a/-b) are removed, not followed:
// --force used to overwrite their targets.
TEST_F(BadInput, PlantedLinksAtTheCopiesAreNotFollowed) {
  const std::string sweep = write("tiny.toml", kTiny), out = path("out.h5");
  const std::string victim_a = write("victim_a.txt", "keep me\n"), victim_b = write("victim_b.txt", "me too\n");
  fs::create_symlink(victim_a, out + ".partial-a");
  fs::create_symlink(victim_b, out + ".partial-b");
  const Outcome o = run_dalesim("run " + sweep + " -o " + out + " --force --backend cpu --threads 1 -q");
  EXPECT_EQ(o.code, 0) << o.output;
  EXPECT_EQ(read_bytes(victim_a), "keep me\n");
  EXPECT_EQ(read_bytes(victim_b), "me too\n");
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(out)));
  EXPECT_EQ(run_dalesim("inspect " + out).code, 0);
}

// The two checks `run` makes through src/sweep/preflight.cpp before it allocates or writes.
TEST_F(BadInput, RunRefusesAGridOverTheMemoryLimit) {
  const std::string sweep = write("six.toml", kTiny + "[sweep]\nseeds = 6\n"), out = path("never.h5");
  expect_refused("run " + sweep + " -o " + out + " --backend cpu --threads 1", out,
                 {"invalid config: sweep = 6 replicas needing an estimated",
                  "allowed: at most 29.3 KiB, the DALESIM_MEMORY_LIMIT_BYTES = 30000", "--shard K/N with N >= 2"},
                 "DALESIM_MEMORY_LIMIT_BYTES=30000");  // about 6.5 KiB a replica
  // One replica over the limit: no shard count helps.
  expect_refused("run " + sweep + " -o " + out + " --backend cpu --threads 1", out,
                 {"invalid config: sweep = replica 0 (model.n_units = 8, task.batch = 4, 6 steps) needs an estimated",
                  "one replica alone does not fit"},
                 "DALESIM_MEMORY_LIMIT_BYTES=1000");
  // The same sweep runs when it fits.
  EXPECT_EQ(
      run_dalesim("run " + sweep + " -o " + out + " --backend cpu --threads 1 -q", "DALESIM_MEMORY_LIMIT_BYTES=60000")
          .code,
      0);
}

TEST_F(BadInput, RunRefusesAnOutputItCannotCreate) {
  const std::string sweep = write("tiny.toml", kTiny);
  const std::string run = "run " + sweep + " --backend cpu --threads 1 -o ";
  expect_refused(run + "/proc/dalesim_out.h5", "/proc/dalesim_out.h5",
                 {"--output = /proc/dalesim_out.h5", "cannot create a file in /proc"});
  expect_refused(run + dir_.str() + " --force", path("never.h5"), {"--output = " + dir_.str(), "is a directory"});
  write("afile", "x");
  expect_refused(run + path("afile/out.h5"), path("afile/out.h5"), {path("afile") + " is a file, not a directory"});
}

}  // namespace
}  // namespace dalesim
