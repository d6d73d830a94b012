// HDF5 output: round trips through the writer and reader, the on-disk layout (chunks, filters,
// extents, dimension scales), crash safety and the errors for bad paths and foreign files.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "dalesim/history.hpp"
#include "hdf5_test_fixture.hpp"
#include "io/h5.hpp"

namespace {

using namespace hdf5_test;
namespace fs = std::filesystem;

TEST_F(Hdf5Test, RoundTripAttributesColumnsHistoryCheckpoints) {
  std::string p = path("run.h5");
  write_run(p, true);
  RunFile f = read_run_file(p);
  EXPECT_EQ(f.format, "dalesim");
  EXPECT_EQ(f.format_version, 1);
  EXPECT_EQ(f.status, "complete");
  EXPECT_EQ(f.sweep_text, sweep_.source_text);
  EXPECT_EQ(f.resolved_config, sweep_.resolved_text);
  EXPECT_EQ(f.command_line, "dalesim run sweep.toml -o out.h5");
  EXPECT_EQ(f.backend, "cpu");
  EXPECT_EQ(f.device, "CPU (2 threads)");
  EXPECT_EQ(f.git_hash, "abc123");
  EXPECT_EQ(f.engine_version, "0.1.0");
  EXPECT_EQ(f.n_replicas, 3);

  auto num = [&](const char* name) {
    const std::vector<double>* c = f.numeric_column(name);
    EXPECT_NE(c, nullptr) << name;
    return c ? *c : std::vector<double>{};
  };
  auto str = [&](const char* name) {
    const std::vector<std::string>* c = f.string_column(name);
    EXPECT_NE(c, nullptr) << name;
    return c ? *c : std::vector<std::string>{};
  };
  EXPECT_EQ(num("id"), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(num("n_units"), (std::vector<double>{4, 6, 4}));
  EXPECT_EQ(num("n_exc"), (std::vector<double>{3, 5, 3}));
  EXPECT_EQ(num("n_inputs"), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(num("alpha_init"), (std::vector<double>{0.25, 0.5, 0.75}));
  EXPECT_EQ(num("lr"), (std::vector<double>{1e-3, 2e-3, 3e-3}));
  EXPECT_EQ(num("lr_alpha"), num("lr"));  // lr_alpha < 0 means "same as lr"
  EXPECT_EQ(num("seed"), (std::vector<double>{100, 101, 102}));
  EXPECT_EQ(num("init_seed")[0], static_cast<double>(derive_seed(100, "init")));
  EXPECT_EQ(num("task_T"), (std::vector<double>{10, 20, 30}));  // a swept key without its own column
  EXPECT_EQ(num("diverged_step"), (std::vector<double>{-1, 40, -1}));
  EXPECT_EQ(num("baseline_loss")[1], 1.0 / 6.0);
  EXPECT_EQ(str("arch"), (std::vector<std::string>{"mix", "mix", "free"}));
  EXPECT_EQ(str("status"), (std::vector<std::string>{"complete", "diverged", "complete"}));
  EXPECT_EQ(str("task"), (std::vector<std::string>{"adding", "adding", "adding"}));
  EXPECT_EQ(f.numeric_column("model_alpha_init"), nullptr);  // mapped onto alpha_init
  EXPECT_EQ(f.numeric_column("seed_1"), nullptr);

  expect_history_rows(f, 6);
  EXPECT_EQ(f.history_step.size(), 6u);
  ASSERT_EQ(f.checkpoint_step, (std::vector<std::int64_t>{30, 60}));
  for (int k = 0; k < 10; ++k) {
    const std::vector<double>* m = f.checkpoint_metric(kCheckpointNames[k]);
    ASSERT_NE(m, nullptr) << kCheckpointNames[k];
    ASSERT_EQ(m->size(), 2 * R());
    for (int c = 0; c < 2; ++c)
      for (std::size_t r = 0; r < R(); ++r) EXPECT_EQ((*m)[c * R() + r], value(2, c, r, k));
  }
  EXPECT_EQ(f.checkpoint_metric("W_rec"), nullptr);  // weights are read separately
  expect_weights(p, 2);
  EXPECT_THROW(read_checkpoint_weights(p, 0, 2), std::runtime_error);
  EXPECT_THROW(read_checkpoint_weights(p, 7, 0), std::runtime_error);
}

TEST_F(Hdf5Test, ChunkedGzipShuffleOnlyStepAxisExtendible) {
  std::string p = path("layout.h5");
  write_run(p, true);
  hid_t file = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  std::vector<std::string> extendible = {"/history/step", "/checkpoints/step"};
  for (const char* n : kHistoryNames) extendible.push_back(std::string("/history/") + n);
  for (const char* n : kCheckpointNames) extendible.push_back(std::string("/checkpoints/") + n);
  for (const char* g : {"n4_i2_o1", "n6_i2_o1"})
    for (const char* n : kWeightNames) extendible.push_back(std::string("/checkpoints/weights/") + g + "/" + n);
  for (const std::string& name : extendible) {
    SCOPED_TRACE(name);
    hid_t ds = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
    ASSERT_GE(ds, 0);
    hid_t dcpl = H5Dget_create_plist(ds);
    ASSERT_EQ(H5Pget_layout(dcpl), H5D_CHUNKED);
    ASSERT_EQ(H5Pget_nfilters(dcpl), 2);
    unsigned flags = 0, config = 0;
    std::size_t n_values = 4;
    unsigned values[4];
    EXPECT_EQ(H5Pget_filter2(dcpl, 0, &flags, &n_values, values, 0, nullptr, &config), H5Z_FILTER_SHUFFLE);
    n_values = 4;
    EXPECT_EQ(H5Pget_filter2(dcpl, 1, &flags, &n_values, values, 0, nullptr, &config), H5Z_FILTER_DEFLATE);
    EXPECT_EQ(values[0], 4u);  // gzip level
    hid_t space = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(rank), max_dims(rank), chunk(rank);
    H5Sget_simple_extent_dims(space, dims.data(), max_dims.data());
    H5Pget_chunk(dcpl, rank, chunk.data());
    EXPECT_EQ(max_dims[0], H5S_UNLIMITED);
    for (int k = 1; k < rank; ++k) EXPECT_EQ(max_dims[k], dims[k]) << "axis " << k << " must be fixed";
    std::size_t bytes = H5Tget_size(H5Dget_type(ds));
    for (hsize_t c : chunk) bytes *= c;
    EXPECT_LE(bytes, 1u << 20);
    if (name.find("/weights/") != std::string::npos) {
      EXPECT_EQ(chunk[0], 1u);  // one checkpoint per chunk
      if (rank == 4) EXPECT_EQ(chunk[3], dims[3]);  // whole matrices
    }
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Dclose(ds);
  }
  // The /replicas table is fixed-size.
  hid_t ds = H5Dopen2(file, "/replicas/alpha_init", H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  hsize_t dims[1], max_dims[1];
  H5Sget_simple_extent_dims(space, dims, max_dims);
  EXPECT_EQ(dims[0], 3u);
  EXPECT_EQ(max_dims[0], 3u);
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(file);
}

TEST_F(Hdf5Test, DimensionScalesAndLabelsAttached) {
  std::string p = path("scales.h5");
  write_run(p, true);
  hid_t file = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  hid_t h_step = H5Dopen2(file, "/history/step", H5P_DEFAULT);
  hid_t c_step = H5Dopen2(file, "/checkpoints/step", H5P_DEFAULT);
  // netCDF-4 finds a dimension only in the dataset's own group or above: one replica scale per group.
  hid_t id = H5Dopen2(file, "/history/replica", H5P_DEFAULT);
  hid_t c_id = H5Dopen2(file, "/checkpoints/replica", H5P_DEFAULT);
  EXPECT_GT(H5DSis_scale(h_step), 0);
  EXPECT_GT(H5DSis_scale(id), 0);
  EXPECT_GT(H5DSis_scale(c_id), 0);
  auto label = [](hid_t ds, unsigned axis) {
    char buf[64] = {0};
    H5DSget_label(ds, axis, buf, sizeof buf);
    return std::string(buf);
  };
  for (const char* n : kHistoryNames) {
    hid_t ds = H5Dopen2(file, (std::string("/history/") + n).c_str(), H5P_DEFAULT);
    EXPECT_GT(H5DSis_attached(ds, h_step, 0), 0) << n;
    EXPECT_GT(H5DSis_attached(ds, id, 1), 0) << n;
    EXPECT_EQ(label(ds, 0), "step");
    EXPECT_EQ(label(ds, 1), "replica");
    H5Dclose(ds);
  }
  for (const char* n : kCheckpointNames) {
    hid_t ds = H5Dopen2(file, (std::string("/checkpoints/") + n).c_str(), H5P_DEFAULT);
    EXPECT_GT(H5DSis_attached(ds, c_step, 0), 0) << n;
    EXPECT_GT(H5DSis_attached(ds, c_id, 1), 0) << n;
    EXPECT_EQ(label(ds, 0), "checkpoint");
    H5Dclose(ds);
  }
  hid_t group_ids = H5Dopen2(file, "/checkpoints/weights/n4_i2_o1/replica", H5P_DEFAULT);
  int members[2] = {-1, -1};
  H5Dread(group_ids, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, members);
  EXPECT_EQ(members[0], 0);
  EXPECT_EQ(members[1], 2);
  for (const char* n : kWeightNames) {
    hid_t ds = H5Dopen2(file, (std::string("/checkpoints/weights/n4_i2_o1/") + n).c_str(), H5P_DEFAULT);
    EXPECT_GT(H5DSis_attached(ds, c_step, 0), 0) << n;
    EXPECT_GT(H5DSis_attached(ds, group_ids, 1), 0) << n;
    H5Dclose(ds);
  }
  hid_t w_rec = H5Dopen2(file, "/checkpoints/weights/n4_i2_o1/W_rec", H5P_DEFAULT);
  EXPECT_EQ(label(w_rec, 1), "replica");
  EXPECT_EQ(label(w_rec, 2), "row");
  EXPECT_EQ(label(w_rec, 3), "col");
  H5Dclose(w_rec);
  H5Dclose(group_ids);
  H5Dclose(c_id);
  H5Dclose(id);
  H5Dclose(c_step);
  H5Dclose(h_step);
  H5Fclose(file);
}

// netCDF-4 (ncdump, xarray's h5netcdf engine) reads the file when every axis of every dataset has
// exactly one dimension scale, found in the dataset's own group or a group above it, and every
// group tracks the creation order of its links.
TEST_F(Hdf5Test, NetCdf4CompatibleDimensionsAndCreationOrder) {
  std::string p = path("netcdf.h5");
  write_run(p, true);
  hid_t file = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->push_back(std::string("/") + name);
    return 0;
  };
  ASSERT_GE(H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, collect, &names), 0);
  names.push_back("/");
  auto parent_of = [](const std::string& path) { return path.substr(0, path.rfind('/') + 1); };
  int n_datasets = 0;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    hid_t obj = H5Oopen(file, name.c_str(), H5P_DEFAULT);
    ASSERT_GE(obj, 0);
    if (H5Iget_type(obj) == H5I_GROUP) {
      hid_t gcpl = H5Gget_create_plist(obj);
      unsigned links = 0, attrs = 0;
      H5Pget_link_creation_order(gcpl, &links);
      H5Pget_attr_creation_order(gcpl, &attrs);
      EXPECT_EQ(links, unsigned{H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED});
      EXPECT_EQ(attrs, unsigned{H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED});
      H5Pclose(gcpl);
    } else {
      ++n_datasets;
      hid_t space = H5Dget_space(obj);
      int rank = H5Sget_simple_extent_ndims(space);
      H5Sclose(space);
      if (H5DSis_scale(obj) > 0) {
        EXPECT_EQ(rank, 1);
        EXPECT_EQ(H5DSget_num_scales(obj, 0), 0);
      }
      for (int axis = 0; axis < rank && H5DSis_scale(obj) <= 0; ++axis) {
        ASSERT_EQ(H5DSget_num_scales(obj, axis), 1) << "axis " << axis;
        std::string scale_path;
        auto name_of = [](hid_t, unsigned, hid_t scale, void* out) -> herr_t {
          char buf[256] = {0};
          H5Iget_name(scale, buf, sizeof buf);
          *static_cast<std::string*>(out) = buf;
          return 1;
        };
        int idx = 0;
        H5DSiterate_scales(obj, axis, &idx, name_of, &scale_path);
        std::string scale_dir = parent_of(scale_path);
        EXPECT_EQ(parent_of(name).compare(0, scale_dir.size(), scale_dir), 0)
            << "axis " << axis << ": scale " << scale_path << " is not in an enclosing group";
      }
    }
    H5Oclose(obj);
  }
  EXPECT_GT(n_datasets, 60);
  H5Fclose(file);

  // The swept columns (and seed) label the replica axis of /history and /checkpoints.
  h5::File f = h5::File::open_read_only(p);
  EXPECT_EQ(f.string_attribute("sweep_axes"), "alpha_init seed task_T");
  for (const char* group : {"history", "checkpoints"}) {
    SCOPED_TRACE(group);
    h5::Group g = f.open_group(group);
    const char* metric = std::string(group) == "history" ? "loss" : "svd_entropy";
    EXPECT_EQ(g.open_dataset(metric).string_attribute("coordinates"), "alpha_init seed task_T");
    EXPECT_EQ(g.open_dataset("replica").read_int64s(), (std::vector<std::int64_t>{0, 1, 2}));
    EXPECT_EQ(g.open_dataset("alpha_init").read_doubles(), (std::vector<double>{0.25, 0.5, 0.75}));
    EXPECT_EQ(g.open_dataset("task_T").read_int64s(), (std::vector<std::int64_t>{10, 20, 30}));
  }
  // The reader sees the same metrics and columns as without the netCDF additions.
  RunFile run = read_run_file(p);
  for (const char* name : {"replica", "alpha_init", "seed", "task_T"}) {
    EXPECT_EQ(run.history_metric(name), nullptr) << name;
    EXPECT_EQ(run.checkpoint_metric(name), nullptr) << name;
  }
  EXPECT_EQ(run.history_metric_names.size(), std::size(kStepMetricFields));  // every metric, no coordinate
  EXPECT_EQ(run.numeric_column("replica"), nullptr);
}

TEST_F(Hdf5Test, StatusRunningWhileOpenCompleteAfterClose) {
  std::string p = path("status.h5");
  auto w = create(p);
  w->append_history(10, metrics(0));
  w->append_checkpoint(10, diagnostics(0), weights(0));
  RunFile open_file = read_run_file(p);
  EXPECT_EQ(open_file.status, "running");
  EXPECT_EQ(open_file.history_step.size(), 1u);
  EXPECT_EQ(*open_file.string_column("status"), (std::vector<std::string>{"running", "running", "running"}));
  expect_weights(p, 1);
  w->close();
  w->close();  // a second close is a no-op
  EXPECT_EQ(read_run_file(p).status, "complete");
  EXPECT_THROW(w->append_history(20, metrics(1)), std::logic_error);
}

TEST_F(Hdf5Test, DestroyedWithoutCloseStillReads) {
  std::string p = path("dropped.h5");
  write_run(p, false);  // the writer goes out of scope without close()
  RunFile f = read_run_file(p);
  EXPECT_EQ(f.status, "running");
  expect_history_rows(f, 6);
  EXPECT_EQ(f.checkpoint_step.size(), 2u);
  expect_weights(p, 2);
}

TEST_F(Hdf5Test, KilledWriterKeepsEverythingUpToLastCheckpoint) {
  std::string p = path("killed.h5");
  // A child process writes, checkpoints, writes three more rows and is killed without any cleanup.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      auto w = create(p);
      for (int s = 0; s < 6; ++s) w->append_history(10 * (s + 1), metrics(s));
      w->append_checkpoint(60, diagnostics(0), weights(0));
      for (int s = 6; s < 9; ++s) w->append_history(10 * (s + 1), metrics(s));
      raise(SIGKILL);
    } catch (...) {
    }
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  RunFile f = read_run_file(p);
  EXPECT_EQ(f.status, "running");
  expect_history_rows(f, 6);
  EXPECT_EQ(f.checkpoint_step, (std::vector<std::int64_t>{60}));
  expect_weights(p, 1);
}

TEST_F(Hdf5Test, RefusesExistingPathWithoutOverwrite) {
  std::string p = path("exists.h5");
  write_run(p, true);
  std::string msg = error_of([&] { create(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("--force"), std::string::npos) << msg;
  EXPECT_EQ(read_run_file(p).history_step.size(), 6u);  // untouched
  auto w = create(p, /*overwrite=*/true);
  w->close();
  EXPECT_EQ(read_run_file(p).history_step.size(), 0u);
}

TEST_F(Hdf5Test, UncreatablePathNamesThePath) {
  std::string missing = path("no/such/dir/out.h5");
  std::string msg = error_of([&] { create(missing); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  if (geteuid() != 0) {  // root ignores permissions
    fs::create_directories(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    std::string ro = path("ro/out.h5");
    msg = error_of([&] { create(ro); });
    EXPECT_NE(msg.find(ro), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(ro));
    fs::permissions(dir_ / "ro", fs::perms::owner_all);
  }
}

TEST_F(Hdf5Test, FailedCreationLeavesNoFile) {
  std::string p = path("bad_shape.h5");
  sweep_.replicas[1].model.n_units = 0;  // rejected after the file was created
  EXPECT_THROW(create(p), std::runtime_error);
  EXPECT_FALSE(fs::exists(p));
}

TEST_F(Hdf5Test, RejectsWrongSizesWithoutWriting) {
  std::string p = path("sizes.h5");
  auto w = create(p);
  EXPECT_THROW(w->append_history(10, std::vector<StepMetrics>(2)), std::invalid_argument);
  std::vector<ReplicaWeights> ws = weights(0);
  ws[1].W_rec.pop_back();
  EXPECT_THROW(w->append_checkpoint(10, diagnostics(0), ws), std::invalid_argument);
  w->close();
  RunFile f = read_run_file(p);
  EXPECT_TRUE(f.history_step.empty());
  EXPECT_TRUE(f.checkpoint_step.empty());
}

TEST_F(Hdf5Test, MissingFile) {
  std::string p = path("absent.h5");
  EXPECT_EQ(error_of([&] { read_run_file(p); }), "no such file: " + p);
}

TEST_F(Hdf5Test, TruncatedFileNamesThePath) {
  std::string p = path("truncated.h5");
  write_run(p, true);
  fs::resize_file(p, fs::file_size(p) / 2);
  std::string msg = error_of([&] { read_run_file(p); });
  EXPECT_EQ(msg.rfind(p + ": not an HDF5 file or truncated", 0), 0u) << msg;
  EXPECT_NE(msg.find("H5Fopen"), std::string::npos) << msg;  // HDF5's own message is kept
}

TEST_F(Hdf5Test, TextFileIsNotHdf5) {
  std::string p = path("notes.txt");
  std::ofstream(p) << "this is not an HDF5 file\n";
  std::string msg = error_of([&] { read_run_file(p); });
  EXPECT_EQ(msg.rfind(p + ": not an HDF5 file or truncated", 0), 0u) << msg;
}

TEST_F(Hdf5Test, ForeignHdf5FileIsNotDalesim) {
  std::string p = path("foreign.h5");
  hid_t file = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[2] = {3, 4};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t ds = H5Dcreate2(file, "random", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<double> data(12);
  for (int k = 0; k < 12; ++k) data[k] = value(99, k, 0, 0);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
  H5Dclose(ds);
  H5Sclose(space);
  H5Fclose(file);
  std::string msg = error_of([&] { read_run_file(p); });
  EXPECT_EQ(msg.rfind(p + ": not a dalesim output file (no 'format' attribute", 0), 0u) << msg;
  EXPECT_THROW(read_checkpoint_weights(p, 0, 0), std::runtime_error);
}

TEST_F(Hdf5Test, NewerFormatVersionAsksForNewerDalesim) {
  std::string p = path("future.h5");
  write_run(p, true);
  hid_t file = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t attr = H5Aopen(file, "format_version", H5P_DEFAULT);
  long long two = 2;
  H5Awrite(attr, H5T_NATIVE_LLONG, &two);
  H5Aclose(attr);
  H5Fclose(file);
  std::string msg = error_of([&] { read_run_file(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("newer dalesim"), std::string::npos) << msg;
}

TEST_F(Hdf5Test, FormatVersionThatIsNotOneNumberIsRefused) {
  // An array attribute was read into one int64 (a stack overflow); found by tests/fuzz/fuzz_h5_reader.cpp.
  std::string p = path("array_version.h5");
  write_run(p, true);
  hid_t file = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(file, "format_version");
  hsize_t n = 64;
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t attr = H5Acreate2(file, "format_version", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<long long> ones(n, 1);
  H5Awrite(attr, H5T_NATIVE_LLONG, ones.data());
  H5Aclose(attr);
  H5Sclose(space);
  H5Fclose(file);
  std::string msg = error_of([&] { read_run_file(p); });
  EXPECT_NE(msg.find("format_version: attribute is not a single number (it holds 64 values)"), std::string::npos)
      << msg;
}

TEST_F(Hdf5Test, CheckpointWeightsOfTheWrongRankAreRefused) {
  // A 1-D alpha was indexed as [checkpoint, replica] (a heap overflow); found by
  // tests/fuzz/fuzz_h5_reader.cpp.
  std::string p = path("flat_alpha.h5");
  write_run(p, true);
  std::string group;
  {
    h5::File f = h5::File::open_read_only(p);
    group = "/checkpoints/weights/" + f.open_group("checkpoints").open_group("weights").child_names().at(0);
  }
  hid_t file = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t g = H5Gopen2(file, group.c_str(), H5P_DEFAULT);
  H5Ldelete(g, "alpha", H5P_DEFAULT);
  hsize_t n = 1;
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t ds = H5Dcreate2(g, "alpha", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  float half = 0.5f;
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &half);
  H5Dclose(ds);
  H5Sclose(space);
  H5Gclose(g);
  H5Fclose(file);
  std::string msg = error_of([&] { read_checkpoint_weights(p, 0, 0); });
  EXPECT_NE(msg.find(group + "/alpha has shape [1], expected 2 axes"), std::string::npos) << msg;
}

TEST_F(Hdf5Test, H5dumpReadsHeaderAndFilters) {
  if (std::system("command -v h5dump > /dev/null 2>&1") != 0) GTEST_SKIP() << "h5dump not on PATH";
  std::string p = path("dump.h5");
  write_run(p, true);
  std::string out = path("dump.txt");
  ASSERT_EQ(std::system(("h5dump -H -p -d /history/loss " + p + " > " + out + " 2>&1").c_str()), 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("H5T_IEEE_F64LE"), std::string::npos) << text;
  EXPECT_NE(text.find("SHUFFLE"), std::string::npos) << text;
  EXPECT_NE(text.find("DEFLATE { LEVEL 4 }"), std::string::npos) << text;
  EXPECT_NE(text.find("( 6, 3 ) / ( H5S_UNLIMITED, 3 )"), std::string::npos) << text;
}

}  // namespace
