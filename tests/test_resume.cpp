// Crash safety and --resume of the real `dalesim run` process: killed with SIGKILL at random
// moments, stopped by SIGTERM/SIGINT, refused against another sweep, stopped by a full disk. A
// resumed run's file must equal an uninterrupted run's, dataset by dataset, bit for bit (CPU).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dalesim/history.hpp"
#include "io/h5.hpp"
#include "io/run_files.hpp"
#include "test_h5_compare.hpp"
#include "test_paths.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// 4 replicas (mix and colei, two seeds) trained for 240 steps with a checkpoint every 20, pruned at
// steps 30, 80, 130, ...: about a second on one thread, with many commits for a kill to land in.
const char* kSweep = R"(
name = "resume-test"
[model]
n_units = 12
[task]
name = "adding"
T = 8
batch = 8
[train]
optimizer = "adam"
lr = 0.01
n_steps = 240
log_every = 5
checkpoint_every = 20
# Pruning changes the connection masks during the run: a resume must restore them.
prune_at = 30
prune_every = 50
prune_fraction = 0.1
[sweep]
seeds = 2
[sweep.grid]
"model.arch" = ["mix", "colei"]
)";

// A child `dalesim` process with its output in a file; optionally under a file-size limit.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& log, rlim_t file_size_limit = RLIM_INFINITY) {
    pid_ = fork();
    if (pid_ == 0) {
      if (file_size_limit != RLIM_INFINITY) {
        rlimit lim{file_size_limit, file_size_limit};
        setrlimit(RLIMIT_FSIZE, &lim);
      }
      std::FILE* out = std::freopen(log.c_str(), "w", stdout);
      if (!out || dup2(fileno(stdout), STDERR_FILENO) < 0) _exit(127);
      std::vector<std::string> argv_s{dalesim::test::binary_path()};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (std::string& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Exit code, or -signal when killed.
  int wait() const {
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1000;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Opens the file in h5py (Debian's /usr/bin/python3 with python3-h5py) and reads every dataset;
// prints the number of history rows. -1 when h5py is not there, -2 when the file does not read.
int h5py_history_rows(const std::string& file) {
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) return -1;
  const std::string cmd =
      "/usr/bin/python3 -c \"import h5py, sys\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "f.visititems(lambda n, o: o[()] if isinstance(o, h5py.Dataset) else None)\n"
      "print(f['history/step'].shape[0])\" " + file + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -2;
  char buf[64] = {0};
  const bool got = std::fgets(buf, sizeof buf, pipe) != nullptr;
  return pclose(pipe) == 0 && got ? std::atoi(buf) : -2;
}

// Both ways round: every dataset of each is in the other, with the same bytes.
void expect_same_datasets(const std::string& a, const std::string& b) {
  EXPECT_GT(dalesim::test::expect_same_datasets(a, b), 1000u);
}

class Resume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("dalesim_resume_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    sweep_ = path("sweep.toml");
    std::ofstream(sweep_) << kSweep;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> run_args(const std::string& out, std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"run", sweep_, "-o", out, "--backend", "cpu", "--threads", "1", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // One uninterrupted run: the reference.
  const std::string& reference() {
    if (reference_.empty()) {
      reference_ = path("reference.h5");
      EXPECT_EQ(Child(run_args(reference_), path("reference.log")).wait(), 0) << read_text(path("reference.log"));
    }
    return reference_;
  }
  // Waits until the run's progress log has reached `step` (or the child has ended).
  void wait_for_step(const std::string& out, int step) const {
    for (int k = 0; k < 6000; ++k) {
      const std::string log = read_text(out + ".progress");
      const auto at = log.rfind("\"step\":");
      if (at != std::string::npos && std::stoi(log.substr(at + 7)) >= step) return;
      std::this_thread::sleep_for(1ms);
    }
  }
  fs::path dir_;
  std::string sweep_, reference_;
};

// The file a killed run left: it opens, holds the history rows up to its last save point and no
// row after, as a prefix of the uninterrupted run's.
void expect_consistent_prefix(const std::string& killed, const std::string& reference) {
  const dalesim::RunFile k = dalesim::read_run_file(killed), r = dalesim::read_run_file(reference);
  EXPECT_EQ(k.status, "running");
  ASSERT_LE(k.history_step.size(), r.history_step.size());
  ASSERT_LE(k.checkpoint_step.size(), r.checkpoint_step.size());
  ASSERT_GE(k.checkpoint_step.size(), 1u);
  for (std::size_t s = 0; s < k.history_step.size(); ++s) EXPECT_EQ(k.history_step[s], r.history_step[s]);
  // Every row before the last checkpoint is there (rows of steps < checkpoint step).
  const std::int64_t last = k.checkpoint_step.back();
  std::size_t expected = 0;
  while (expected < r.history_step.size() && r.history_step[expected] < last) ++expected;
  EXPECT_GE(k.history_step.size(), expected);
  const std::size_t R = static_cast<std::size_t>(k.n_replicas);
  const auto* loss_k = k.history_metric("loss");
  const auto* loss_r = r.history_metric("loss");
  ASSERT_TRUE(loss_k && loss_r);
  for (std::size_t i = 0; i < k.history_step.size() * R; ++i) EXPECT_EQ((*loss_k)[i], (*loss_r)[i]);
}

TEST_F(Resume, KilledAtRandomMomentsOpensAndResumesBitwise) {
  const std::string ref = reference();
  std::mt19937 rng(20261202);
  // Kill moments spread over the whole run whatever the machine's speed: at a random step (as
  // the progress log tells), plus a random delay of up to a few milliseconds, so that kills land
  // inside commits too; the first two trials kill within milliseconds of the start (before the
  // file or its first save point exists).
  std::uniform_int_distribution<int> step_of(0, 239), jitter_us(0, 4000);
  int n_resumed = 0;
  for (int trial = 0; trial < 10; ++trial) {
    const std::string out = path("killed" + std::to_string(trial) + ".h5");
    const int step = trial < 2 ? -1 : step_of(rng), us = trial < 2 ? 1000 + 4000 * trial : jitter_us(rng);
    Child child(run_args(out), out + ".log");
    if (step >= 0) wait_for_step(out, step);
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    child.signal(SIGKILL);
    const int code = child.wait();
    SCOPED_TRACE("trial " + std::to_string(trial) + ", killed " + std::to_string(us) + " us after step " +
                 std::to_string(step) + " (exit " + std::to_string(code) + ")");
    if (code == -SIGKILL && fs::exists(out) && dalesim::read_run_file(out).status == "running") {
      const dalesim::RunFile killed = dalesim::read_run_file(out);
      if (killed.checkpoint_step.size() > 0) expect_consistent_prefix(out, ref);
      const int rows = h5py_history_rows(out);
      if (rows != -1) EXPECT_EQ(rows, static_cast<int>(killed.history_step.size())) << "h5py cannot read " << out;
      ++n_resumed;
    }
    // --resume continues whatever is there (or starts afresh when there is nothing to continue).
    const int resumed = Child(run_args(out, {"--resume"}), out + ".resume.log").wait();
    ASSERT_EQ(resumed, 0) << read_text(out + ".resume.log");
    EXPECT_FALSE(fs::is_symlink(out));
    EXPECT_FALSE(fs::exists(out + ".partial-a") || fs::exists(out + ".partial-b"));
    EXPECT_EQ(dalesim::read_run_file(out).status, "complete");
    expect_same_datasets(ref, out);
  }
  EXPECT_GE(n_resumed, 5) << "too few kills landed while the run was writing";
}

TEST_F(Resume, SigtermSigintAndSighupSaveAndExitThree) {
  const std::string ref = reference();
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    const std::string out = path(std::string("stopped_") + std::to_string(sig) + ".h5");
    Child child(run_args(out), out + ".log");
    wait_for_step(out, 60);
    child.signal(sig);
    ASSERT_EQ(child.wait(), 3) << read_text(out + ".log");
    const std::string log = read_text(out + ".log");
    EXPECT_NE(log.find("--resume"), std::string::npos) << log;
    const dalesim::RunFile f = dalesim::read_run_file(out);
    EXPECT_EQ(f.status, "running");
    // Every logged row before the step it stopped at is saved (beyond the last checkpoint), none after.
    const auto at = log.find("after step ");
    ASSERT_NE(at, std::string::npos) << log;
    const std::int64_t stopped = std::stoll(log.substr(at + 11));
    ASSERT_FALSE(f.history_step.empty());
    EXPECT_LT(f.history_step.back(), stopped);
    EXPECT_GE(f.history_step.back(), stopped - 5) << "rows after the last checkpoint were not saved";
    EXPECT_NE(read_text(out + ".progress").find("\"interrupted\""), std::string::npos);
    ASSERT_EQ(Child(run_args(out, {"--resume"}), out + ".resume.log").wait(), 0) << read_text(out + ".resume.log");
    expect_same_datasets(ref, out);
    // Both runs that wrote the file are listed, in order.
    const std::string runs = dalesim::h5::File::open_read_only(out).string_attribute("runs");
    const auto start = runs.find(" start backend=cpu device="), resume = runs.find("\n");
    EXPECT_NE(start, std::string::npos) << runs;
    ASSERT_NE(resume, std::string::npos) << runs;
    EXPECT_NE(runs.find(" resume backend=cpu device=", resume), std::string::npos) << runs;
    EXPECT_NE(runs.find("--resume", resume), std::string::npos) << runs;
    EXPECT_EQ(runs.find("--resume"), runs.rfind("--resume")) << "the first run's line has no --resume";
  }
}

TEST_F(Resume, RefusedAgainstAnotherSweepAndWithoutResume) {
  const std::string out = path("other.h5");
  Child child(run_args(out), out + ".log");
  wait_for_step(out, 60);
  child.signal(SIGTERM);
  ASSERT_EQ(child.wait(), 3) << read_text(out + ".log");
  const std::string target = fs::read_symlink(out).string();
  const std::string before = read_text(path(target));

  // Without --resume: refused, naming both ways on.
  ASSERT_EQ(Child(run_args(out), path("again.log")).wait(), 2);
  EXPECT_NE(read_text(path("again.log")).find("--resume"), std::string::npos) << read_text(path("again.log"));
  EXPECT_NE(read_text(path("again.log")).find("--force"), std::string::npos);

  // With another sweep file (one learning rate changed): refused, naming the hashes.
  std::string text = kSweep;
  text.replace(text.find("lr = 0.01"), 9, "lr = 0.02");
  std::ofstream(path("changed.toml")) << text;
  std::vector<std::string> args = run_args(out, {"--resume"});
  args[1] = path("changed.toml");
  ASSERT_EQ(Child(args, path("changed.log")).wait(), 2);
  const std::string msg = read_text(path("changed.log"));
  EXPECT_NE(msg.find("sweep_hash"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--resume"), std::string::npos) << msg;
  // The same sweep file with a --shard the whole run was not started with: the shard is named,
  // not the sweep text.
  ASSERT_EQ(Child(run_args(out, {"--resume", "--shard", "0/2"}), path("shard.log")).wait(), 2);
  const std::string shard_msg = read_text(path("shard.log"));
  EXPECT_NE(shard_msg.find("allowed: a file of shard 0/2 of this sweep"), std::string::npos) << shard_msg;
  EXPECT_NE(shard_msg.find("it holds the whole sweep: resume it with the same --shard it was started with (none)"),
            std::string::npos)
      << shard_msg;
  // --resume with --force is a contradiction.
  ASSERT_EQ(Child(run_args(out, {"--resume", "--force"}), path("both.log")).wait(), 2);
  // Nothing was touched.
  EXPECT_EQ(fs::read_symlink(out).string(), target);
  EXPECT_EQ(read_text(path(target)), before);

  // The right sweep file continues; once complete, --resume is a no-op.
  ASSERT_EQ(Child(run_args(out, {"--resume"}), path("ok.log")).wait(), 0) << read_text(path("ok.log"));
  const auto mtime = fs::last_write_time(out);
  ASSERT_EQ(Child(run_args(out, {"--resume"}), path("noop.log")).wait(), 0);
  EXPECT_NE(read_text(path("noop.log")).find("already complete"), std::string::npos) << read_text(path("noop.log"));
  EXPECT_EQ(fs::last_write_time(out), mtime);
}

TEST_F(Resume, FullDiskNamesTheFileKeepsTheLastCheckpointAndResumes) {
  const std::string ref = reference();
  const std::string out = path("full.h5");
  // A file-size limit of 4/5 of the finished file (past the first checkpoint, which holds the
  // layout and most of the weights' chunks) stands in for a disk that fills during the run.
  const rlim_t limit = fs::file_size(ref) * 4 / 5;
  ASSERT_EQ(Child(run_args(out), out + ".log", limit).wait(), 1) << read_text(out + ".log");
  const std::string log = read_text(out + ".log");
  EXPECT_NE(log.find(".partial-"), std::string::npos) << log;  // names the file it could not write
  EXPECT_NE(log.find("File too large"), std::string::npos) << log;
  ASSERT_TRUE(fs::is_symlink(out));
  const dalesim::RunFile f = dalesim::read_run_file(out);
  EXPECT_GE(f.checkpoint_step.size(), 1u);
  EXPECT_LT(f.checkpoint_step.size(), dalesim::read_run_file(ref).checkpoint_step.size());
  expect_consistent_prefix(out, ref);
  // The progress log ends with the failure, so `dalesim status` does not report a running run.
  EXPECT_NE(read_text(out + ".progress").find("\"status\":\"failed\""), std::string::npos);
  const dalesim::test::Outcome status = dalesim::test::run_dalesim("status " + out);
  EXPECT_NE(status.output.find(out + ": failed"), std::string::npos) << status.output;
  // Space freed: the run goes on from its last checkpoint to the same result.
  ASSERT_EQ(Child(run_args(out, {"--resume"}), out + ".resume.log").wait(), 0) << read_text(out + ".resume.log");
  expect_same_datasets(ref, out);
}

// A run killed after its last checkpoint but before it closed, copied out of its link as a plain
// file: --resume trains nothing, takes the final metrics from the file and finishes it.
TEST_F(Resume, ResumedAfterTheLastStepFinishesThePlainFile) {
  const std::string ref = reference();
  const std::string out = path("last.h5");
  fs::copy_file(ref, out);
  {
    dalesim::h5::File f = dalesim::h5::File::open_read_write(out);
    f.set_attribute("status", "running");
  }
  ASSERT_EQ(Child(run_args(out, {"--resume"}), out + ".log").wait(), 0) << read_text(out + ".log");
  EXPECT_NE(read_text(out + ".log").find("resumed at step 240"), std::string::npos) << read_text(out + ".log");
  EXPECT_FALSE(fs::is_symlink(out));
  EXPECT_EQ(dalesim::read_run_file(out).status, "complete");
  expect_same_datasets(ref, out);
}

}  // namespace

// A second run on an output another live run is writing is refused before it touches anything
// (exit 2, naming the other process), with --force, --resume or neither; the live run finishes
// and its file equals an uninterrupted run's. Before, --force truncated the live copy and both
// runs lost everything.
TEST_F(Resume, SecondRunOnALiveOutputIsRefusedAndTheFirstFinishesIntact) {
  // The sweep of the other tests, ten times longer, so that the second runs meet a live first.
  std::string text = kSweep;
  text.replace(text.find("n_steps = 240"), 13, "n_steps = 2400");
  std::ofstream(sweep_) << text;
  const std::string ref = reference(), out = path("live.h5");
  const Child first(run_args(out), path("first.log"));
  wait_for_step(out, 20);
  const std::string owner = "another dalesim process (pid " + std::to_string(first.pid()) + ") is writing " + out;
  for (const std::vector<std::string>& extra : {std::vector<std::string>{"--force"}, {"--resume"}, {}}) {
    const std::string log = path("second.log");
    EXPECT_EQ(Child(run_args(out, extra), log).wait(), 2) << read_text(log);
    EXPECT_NE(read_text(log).find(owner), std::string::npos) << read_text(log);
  }
  EXPECT_EQ(::waitpid(first.pid(), nullptr, WNOHANG), 0) << "the first run ended before the refusals were all tried";
  ASSERT_EQ(first.wait(), 0) << read_text(path("first.log"));
  expect_same_datasets(out, ref);
  EXPECT_FALSE(fs::exists(out + ".lock"));
  for (const std::string& copy : dalesim::run_file_copies(out)) EXPECT_FALSE(fs::exists(copy));
}

// Two fresh runs started at the same moment: one trains, the other is refused as above (exit 2),
// not left to fail on HDF5's own lock (exit 1).
TEST_F(Resume, TwoRunsStartedTogetherOneTrainsTheOtherIsRefused) {
  const std::string out = path("race.h5");
  const Child a(run_args(out), path("a.log")), b(run_args(out), path("b.log"));
  const int ca = a.wait(), cb = b.wait();
  EXPECT_EQ(std::min(ca, cb), 0) << read_text(path("a.log")) << read_text(path("b.log"));
  EXPECT_EQ(std::max(ca, cb), 2) << read_text(path("a.log")) << read_text(path("b.log"));
  EXPECT_NE(read_text(path(ca == 2 ? "a.log" : "b.log")).find("another dalesim process"), std::string::npos);
  expect_same_datasets(out, reference());
}

// SIGTERM early in the run (a Slurm time limit or scancel just after the task began), once main
// has started: exit 3 like any later one, so the shipped sbatch script requeues the task. (In the
// first ~0.1 s the dynamic loader is still mapping cuBLAS and no handler can exist yet; the sbatch
// script requeues that exit, 143, too.)
TEST_F(Resume, SigtermEarlyInTheRunExitsThree) {
  const std::string out = path("early.h5");
  Child child(run_args(out), out + ".log");
  for (int k = 0; k < 5000 && !fs::exists(out + ".lock"); ++k) std::this_thread::sleep_for(100us);
  child.signal(SIGTERM);
  const int code = child.wait();
  EXPECT_TRUE(code == 3 || code == 0) << code << "\n" << read_text(out + ".log");
  if (code == 3) ASSERT_EQ(Child(run_args(out, {"--resume"}), out + ".resume.log").wait(), 0) << read_text(out + ".resume.log");
  expect_same_datasets(reference(), out);
}

// A run killed between its final rename and the removal of the other copy leaves a duplicate
// OUT.h5.partial-x next to the finished file: --resume (nothing left to train) removes it.
TEST_F(Resume, ResumeOnAFinishedFileRemovesALeftoverCopy) {
  const std::string out = path("done.h5");
  ASSERT_EQ(Child(run_args(out), out + ".log").wait(), 0) << read_text(out + ".log");
  const std::string stale = dalesim::run_file_copies(out)[1];
  fs::copy_file(out, stale);
  ASSERT_EQ(Child(run_args(out, {"--resume"}), out + ".again.log").wait(), 0) << read_text(out + ".again.log");
  EXPECT_NE(read_text(out + ".again.log").find("already complete"), std::string::npos);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(out)));
}

// The file task's trials file rewritten between a stop and --resume: refused (exit 2), naming the
// file, its size and hash then and now; with the file restored the run continues. The run is one
// shard of a sweep over two trials files: only the files its own replicas read count (a change to
// the other shard's file does not stop it).
TEST_F(Resume, ResumeRefusesATrialsFileChangedSinceTheStart) {
  const std::string trials = path("trials.h5"), other = path("other.h5");
  auto write_trials = [&](const std::string& file, float scale) {
    dalesim::h5::silence_errors();
    dalesim::h5::File f = dalesim::h5::File::create(file, true);
    std::vector<float> x(20 * 5 * 2), y(20 * 5 * 1);
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = scale * static_cast<float>(k % 7) / 7.f;
    for (std::size_t k = 0; k < y.size(); ++k) y[k] = static_cast<float>(k % 3) / 3.f;
    f.create_dataset("inputs", H5T_IEEE_F32LE, dalesim::h5::Dataspace::simple({20, 5, 2})).write(H5T_NATIVE_FLOAT, x.data());
    f.create_dataset("targets", H5T_IEEE_F32LE, dalesim::h5::Dataspace::simple({20, 5, 1})).write(H5T_NATIVE_FLOAT, y.data());
    f.close();
  };
  write_trials(trials, 1.f);
  write_trials(other, 3.f);
  std::ofstream(sweep_) << "name = \"trials\"\n[model]\nn_units = 16\n[task]\nname = \"file\"\nbatch = 8\n[train]\n"
                           "n_steps = 20000\nlog_every = 5\ncheckpoint_every = 100\n[sweep.grid]\n\"task.path\" = [\"" +
                               trials + "\", \"" + other + "\"]\n";
  const std::vector<std::string> shard = {"--shard", "0/2"};  // replica 0, which reads trials.h5
  auto args = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), shard.begin(), shard.end());
    return run_args(path("trials_run.h5"), extra);
  };
  const std::string out = path("trials_run.h5");
  Child child(args({}), out + ".log");
  wait_for_step(out, 150);
  child.signal(SIGTERM);
  ASSERT_EQ(child.wait(), 3) << read_text(out + ".log");
  fs::copy_file(trials, path("trials.kept"));  // the bytes (HDF5 stores times: a rewrite is not the same file)
  write_trials(trials, 2.f);
  const std::string log = path("changed.log");
  EXPECT_EQ(Child(args({"--resume"}), log).wait(), 2) << read_text(log);
  EXPECT_NE(read_text(log).find("allowed: the data files the run started with (" + trials + " size="), std::string::npos)
      << read_text(log);
  fs::copy_file(path("trials.kept"), trials, fs::copy_options::overwrite_existing);
  write_trials(other, 4.f);  // the other shard's file: not this run's data
  const Child again(args({"--resume"}), path("restored.log"));
  wait_for_step(out, 200);
  ::kill(again.pid(), SIGTERM);
  EXPECT_EQ(again.wait(), 3) << read_text(path("restored.log"));
}
