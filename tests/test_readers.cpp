// "Analyse the output in any tool", shown: every reader Debian packages (h5py, xarray with the
// h5netcdf engine, ncdump, h5dump, R hdf5r) opens an output of the dalesim binary and reads the same
// loss the engine's reader reports; `dalesim status` follows the progress log.
#include <sys/stat.h>
#include <utime.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_readers_fixture.hpp"

namespace {

using namespace readers_test;

constexpr int kReplica = 1;  // the replica whose last loss every reader reports

// The numbers in `text` (as strtod reads them), in order.
std::vector<double> numbers_in(const std::string& text) {
  std::vector<double> v;
  const char* p = text.c_str();
  while (*p) {
    char* end = nullptr;
    double d = std::strtod(p, &end);
    if (end != p && (std::isdigit(static_cast<unsigned char>(*p)) || *p == '-' || *p == '.')) {
      v.push_back(d);
      p = end;
    } else {
      ++p;
    }
  }
  return v;
}

double after(const std::string& text, const std::string& marker) {
  const std::size_t at = text.find(marker);
  if (at == std::string::npos) return std::nan("");
  return std::strtod(text.c_str() + at + marker.size(), nullptr);
}

using Readers = ReaderSuite;

TEST_F(Readers, H5pyReadsTheEngineValue) {
  if (std::string why = python_missing("h5py", "python3-h5py"); !why.empty()) GTEST_SKIP() << why;
  const std::string script =
      "import sys, h5py; f = h5py.File(sys.argv[1], 'r'); print('value=' + repr(float(f['history/loss'][-1, 1])))";
  Outcome o = shell(std::string(kPython) + " -c " + quote(script) + " " + quote(out));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_EQ(after(o.output, "value="), engine_last_loss(kReplica)) << o.output;
}

TEST_F(Readers, XarrayOpensGroupsLabelledWithSweptCoordinates) {
  if (std::string why = python_missing("xarray, h5netcdf", "python3-xarray python3-h5netcdf"); !why.empty())
    GTEST_SKIP() << why;
  const std::string script =
      "import sys, xarray as xr\n"
      "h = xr.open_dataset(sys.argv[1], engine='h5netcdf', group='history')\n"
      "print('value=' + repr(float(h.loss.isel(step=-1).sel(replica=1))))\n"
      "print('alpha_init=' + repr(float(h.alpha_init.sel(replica=1))))\n"
      "print('dims=' + ','.join(h.loss.dims))\n"
      "print('coords=' + ','.join(sorted(h.coords)))\n"
      "print('steps=' + ','.join(str(int(s)) for s in h.step.values))\n"
      "c = xr.open_dataset(sys.argv[1], engine='h5netcdf', group='checkpoints')\n"
      "print('ckpt=' + ','.join(str(int(s)) for s in c.step.values))\n"
      "w = xr.open_dataset(sys.argv[1], engine='h5netcdf', group='checkpoints/weights/n8_i2_o1')\n"
      "print('wdims=' + ','.join(w.W_rec.dims))\n"
      "r = xr.open_dataset(sys.argv[1], engine='h5netcdf', group='replicas').to_dataframe()\n"
      "print('table=%d,%s' % (len(r), r.loc[1, 'arch']))\n";
  Outcome o = shell(std::string(kPython) + " -c " + quote(script) + " " + quote(out));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_EQ(after(o.output, "value="), engine_last_loss(kReplica)) << o.output;
  EXPECT_EQ(after(o.output, "alpha_init="), (*run->numeric_column("alpha_init"))[kReplica]) << o.output;
  EXPECT_NE(o.output.find("dims=step,replica\n"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("coords=alpha_init,e_fraction,replica,seed,step\n"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("steps=0,3,6\n"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("ckpt=0,5,7\n"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("wdims=step,replica,row,col\n"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("table=8,mix\n"), std::string::npos) << o.output;
}

TEST_F(Readers, NcdumpListsTheFileAndReadsTheEngineValue) {
  if (!on_path("ncdump"))
    GTEST_SKIP() << "ncdump not on PATH (Debian package netcdf-bin; .ci/install-deps installs it)";
  Outcome header = shell("ncdump -h " + quote(out));
  ASSERT_EQ(header.code, 0) << header.output;
  for (const char* text : {"group: history {", "step = UNLIMITED ; // (3 currently)", "replica = 8 ;",
                           "double loss(step, replica) ;", "loss:coordinates = \"alpha_init e_fraction seed\" ;",
                           "group: n8_i2_o1 {", "float W_rec(step, replica, row, col) ;", "string arch(replica) ;"})
    EXPECT_NE(header.output.find(text), std::string::npos) << text << "\n" << header.output;
  Outcome data = shell("ncdump -p 9,17 -v /history/loss " + quote(out));
  ASSERT_EQ(data.code, 0) << data.output;
  const std::size_t at = data.output.find("loss =");
  ASSERT_NE(at, std::string::npos) << data.output;
  const std::string block = data.output.substr(at + 6, data.output.find(';', at) - at - 6);
  const std::vector<double> values = numbers_in(block);
  const std::size_t S = run->history_step.size(), R = static_cast<std::size_t>(run->n_replicas);
  ASSERT_EQ(values.size(), S * R) << block;
  EXPECT_EQ(values[(S - 1) * R + kReplica], engine_last_loss(kReplica));
}

TEST_F(Readers, H5dumpReadsTheEngineValue) {
  if (!on_path("h5dump")) GTEST_SKIP() << "h5dump not on PATH (Debian package hdf5-tools)";
  const std::size_t S = run->history_step.size();
  const std::string start = std::to_string(S - 1) + "," + std::to_string(kReplica);
  Outcome o = shell("h5dump -m %.17g -d /history/loss -s " + start + " -c 1,1 " + quote(out));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_EQ(after(o.output, "(" + start + "): "), engine_last_loss(kReplica)) << o.output;
}

TEST_F(Readers, RHdf5rReadsTheEngineValueWithDimensionsReversed) {
  if (!on_path("Rscript")) GTEST_SKIP() << "Rscript not on PATH (Debian package r-cran-hdf5r brings R)";
  if (shell("Rscript -e 'library(hdf5r)'").code != 0)
    GTEST_SKIP() << "R package hdf5r not installed (Debian package r-cran-hdf5r)";
  // R is column-major like MATLAB and Julia: the [S, R] dataset arrives as R x S.
  const std::string script = "suppressMessages(library(hdf5r)); f <- H5File$new(commandArgs(TRUE)[1], mode = 'r'); "
                             "x <- f[['history/loss']]; d <- x$dims; "
                             "cat(sprintf('dims=%d,%d value=%.17g\\n', d[1], d[2], x[2, d[2]])); f$close_all()";
  Outcome o = shell("Rscript -e " + quote(script) + " " + quote(out));
  ASSERT_EQ(o.code, 0) << o.output;
  const std::string dims = "dims=" + std::to_string(run->n_replicas) + "," + std::to_string(run->history_step.size());
  EXPECT_NE(o.output.find(dims), std::string::npos) << o.output;
  EXPECT_EQ(after(o.output, "value="), engine_last_loss(kReplica)) << o.output;
}

// ---- dalesim status -------------------------------------------------------------------------------

TEST_F(Readers, StatusOfACompleteRun) {
  Outcome o = shell(std::string(DALESIM_BINARY) + " status " + quote(out));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find(out + ": complete, step 7/7 (100.0%), 8 replicas, 0 diverged"), std::string::npos)
      << o.output;
  EXPECT_NE(o.output.find("steps/s"), std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("ETA"), std::string::npos) << o.output;
}

TEST_F(Readers, StatusOfARunningAndOfAStalledRun) {
  const std::string p = dir + "/live.h5";
  std::ofstream(p + ".progress")
      << "{\"event\":\"start\",\"n_steps\":1000,\"n_replicas\":40}\n"
      << "{\"event\":\"step\",\"step\":0,\"n_steps\":1000,\"elapsed_s\":0.5,\"eta_s\":500,\"mean_loss\":null,"
         "\"n_diverged\":0}\n"
      << "{\"event\":\"step\",\"step\":249,\"n_steps\":1000,\"elapsed_s\":10.000,\"eta_s\":30.000,"
         "\"mean_loss\":0.25,\"n_diverged\":2}\n"
      << "{\"event\":\"step\",\"st";  // a line being written
  Outcome o = shell(std::string(DALESIM_BINARY) + " status " + quote(p));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find(p + ": running, step 250/1000 (25.0%), 40 replicas, 2 diverged"), std::string::npos)
      << o.output;
  EXPECT_NE(o.output.find("25.0 steps/s (1000 replica-steps/s), ETA 30 s, mean loss 0.25"), std::string::npos)
      << o.output;
  EXPECT_NE(o.output.find("log updated"), std::string::npos) << o.output;
  // No line for ten minutes and no end line: probably killed.
  struct utimbuf old {};
  old.actime = old.modtime = std::time(nullptr) - 600;
  ASSERT_EQ(utime((p + ".progress").c_str(), &old), 0);
  o = shell(std::string(DALESIM_BINARY) + " status --follow " + quote(p + ".progress"));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find(p + ": no progress, step 250/1000"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("no progress for 10.0 min (it logged every 10 s before): the run may have stopped"),
            std::string::npos)
      << o.output;
  EXPECT_EQ(o.output.find("ETA"), std::string::npos) << o.output;
  // Right after a kill: no line for 30 s where the run logged every 0.1 s says so too.
  std::ofstream(p + ".progress")
      << "{\"event\":\"start\",\"n_steps\":1000,\"n_replicas\":4}\n"
      << "{\"event\":\"tasks\",\"tasks\":\"adding go_nogo\"}\n"
      << "{\"event\":\"step\",\"step\":99,\"steps_done\":100,\"n_steps\":1000,\"elapsed_s\":1.0,\"eta_s\":9,"
         "\"mean_loss\":0.3,\"n_diverged\":0,\"mean_loss.adding\":0.1,\"mean_loss.go_nogo\":0.5}\n"
      << "{\"event\":\"step\",\"step\":109,\"steps_done\":110,\"n_steps\":1000,\"elapsed_s\":1.1,\"eta_s\":8.9,"
         "\"mean_loss\":0.2,\"n_diverged\":0,\"mean_loss.adding\":0.05,\"mean_loss.go_nogo\":0.35}\n";
  o = shell(std::string(DALESIM_BINARY) + " status " + quote(p));
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("mean loss by task: adding 0.05, go_nogo 0.35"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("step 110/1000"), std::string::npos) << o.output;
  old.actime = old.modtime = std::time(nullptr) - 30;
  ASSERT_EQ(utime((p + ".progress").c_str(), &old), 0);
  o = shell(std::string(DALESIM_BINARY) + " status " + quote(p));
  // 30 s, or a second or two more when the machine is slow between utime and status.
  EXPECT_TRUE(o.output.find("no progress for 30 s") != std::string::npos ||
              o.output.find("no progress for 31 s") != std::string::npos ||
              o.output.find("no progress for 32 s") != std::string::npos)
      << o.output;
  EXPECT_EQ(o.output.find("ETA"), std::string::npos) << o.output;
}

TEST_F(Readers, StatusWithoutAProgressLogIsBadInput) {
  const std::string p = dir + "/absent.h5";
  Outcome o = shell(std::string(DALESIM_BINARY) + " status " + quote(p));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_NE(o.output.find("no progress log " + p + ".progress"), std::string::npos) << o.output;
}

}  // namespace
