// libFuzzer target: the HDF5 reader's checks (read_run_file, read_run_identity,
// read_checkpoint_weights, and the /resume reader read_saved_state) on files that only look like
// dalesim output.
// An input is a recipe for a well-formed HDF5 file with dalesim's attribute and dataset names but
// arbitrary types, ranks, sizes and values: those files get past HDF5 and reach our checks.
// With DALESIM_FUZZ_H5_RAW=1 an input starting with the HDF5 signature is written out as the
// file itself instead (mutated real files): that mostly tests libhdf5's own parsing, which
// crashes on some damaged files in HDF5 1.10.8 (docs/fuzzing.md), so it is not part of CI.
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "dalesim/history.hpp"
#include "io/merge.hpp"
#include "io/run_files.hpp"

namespace {

const char kSignature[] = "\x89HDF\r\n\x1a\n";

// One directory per fuzzing process (parallel jobs must not share the file), removed at exit.
std::string g_dir;

void remove_dir() {
  std::error_code ec;
  std::filesystem::remove_all(g_dir, ec);
}

const std::string& input_path() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/dalesim-fuzz-h5-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) {
      std::perror("fuzz_h5_reader: mkdtemp");
      std::abort();
    }
    g_dir = buf.data();
    std::atexit(remove_dir);
    return g_dir + "/input.h5";
  }();
  return path;
}

// Failures while building the recipe file are the fuzzer's own (no reader involved): stop loudly.
hid_t checked(hid_t id, const char* what) {
  if (id < 0) {
    std::fprintf(stderr, "fuzz_h5_reader: %s failed while writing the recipe file\n", what);
    std::abort();
  }
  return id;
}

const char* const kRootAttributes[] = {"format",     "format_version", "status",     "sweep_name",
                                       "sweep_text", "sweep_hash",     "n_replicas", "shard_index",
                                       "shard_count", "resolved_config", "backend",  "dalesim_version"};
const char* const kCanonical[] = {"dalesim", "complete", "running", "diverged", "1", ""};

// Paths the readers look at; the last component becomes a group or a dataset.
const char* const kPaths[] = {
    "replicas",          "replicas/id",          "replicas/replica",        "replicas/status",
    "replicas/arch",     "replicas/lr",          "history",                 "history/step",
    "history/loss",      "history/alpha",        "checkpoints",             "checkpoints/step",
    "checkpoints/spectral_radius",               "checkpoints/weights",     "checkpoints/weights/g",
    "checkpoints/weights/g/replica",             "checkpoints/weights/g/W_rec",
    "checkpoints/weights/g/W_dale",              "checkpoints/weights/g/W_free",
    "checkpoints/weights/g/W_in",                "checkpoints/weights/g/W_out",
    "checkpoints/weights/g/b",                   "checkpoints/weights/g/b_out",
    "checkpoints/weights/g/alpha",               "checkpoints/weights/h/W_rec",
    "resume",            "resume/offset",        "resume/params",           "resume/moment1",
    "resume/moment2",    "resume/adam_steps",    "resume/diverged_step",
};

// Attributes of the /resume group (read_saved_state), added when the recipe made it a group.
const char* const kResumeAttributes[] = {"next_iteration", "history_rows", "checkpoint_rows"};

hid_t string_type(FuzzedDataProvider& in, bool* variable) {
  hid_t t = checked(H5Tcopy(H5T_C_S1), "H5Tcopy");
  *variable = in.ConsumeBool();
  H5Tset_size(t, *variable ? H5T_VARIABLE : in.ConsumeIntegralInRange<std::size_t>(1, 16));
  return t;
}

std::string some_string(FuzzedDataProvider& in) {
  if (in.ConsumeBool()) return kCanonical[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kCanonical) - 1)];
  return in.ConsumeRandomLengthString(48);
}

// Writes `n` strings to an attribute or dataset through `write(type, buffer)`.
template <class Write>
void write_strings(FuzzedDataProvider& in, hid_t type, bool variable, std::size_t n, Write write) {
  std::vector<std::string> values(n);
  for (auto& v : values) v = some_string(in);
  if (variable) {
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    write(type, ptrs.empty() ? nullptr : static_cast<const void*>(ptrs.data()));
  } else {
    const std::size_t width = H5Tget_size(type);
    std::vector<char> buf(n * width + 1, '\0');
    for (std::size_t i = 0; i < n; ++i) std::memcpy(&buf[i * width], values[i].data(), std::min(width, values[i].size()));
    write(type, buf.data());
  }
}

hid_t make_space(FuzzedDataProvider& in, int max_rank, std::size_t* n) {
  const int rank = in.ConsumeIntegralInRange<int>(-1, max_rank);
  if (rank < 0) {  // no elements at all, unlike an empty simple dataspace
    *n = 0;
    return checked(H5Screate(H5S_NULL), "H5Screate");
  }
  if (rank == 0) {
    *n = 1;
    return checked(H5Screate(H5S_SCALAR), "H5Screate");
  }
  hsize_t dims[5];
  *n = 1;
  for (int k = 0; k < rank; ++k) *n *= (dims[k] = in.ConsumeIntegralInRange<hsize_t>(0, 3));
  return checked(H5Screate_simple(rank, dims, nullptr), "H5Screate_simple");
}

// Numeric data from the input; type 0: int32, 1: int64, 2: float, 3: double.
void write_numbers(FuzzedDataProvider& in, int type, std::size_t n, hid_t obj, bool attribute) {
  static const hid_t mem[] = {H5T_NATIVE_INT32, H5T_NATIVE_INT64, H5T_NATIVE_FLOAT, H5T_NATIVE_DOUBLE};
  std::vector<double> v(n + 1);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = in.ConsumeBool() ? in.ConsumeIntegralInRange<int>(-2, 4) : in.ConsumeFloatingPoint<double>();
  std::vector<unsigned char> buf((n + 1) * 8);
  for (std::size_t i = 0; i < n; ++i) switch (type) {
      case 0: { std::int32_t x = static_cast<std::int32_t>(std::isfinite(v[i]) && std::fabs(v[i]) < 2e9 ? v[i] : 0); std::memcpy(&buf[i * 4], &x, 4); break; }
      case 1: { std::int64_t x = static_cast<std::int64_t>(std::isfinite(v[i]) && std::fabs(v[i]) < 9e18 ? v[i] : 0); std::memcpy(&buf[i * 8], &x, 8); break; }
      case 2: { float x = static_cast<float>(v[i]); std::memcpy(&buf[i * 4], &x, 4); break; }
      default: std::memcpy(&buf[i * 8], &v[i], 8);
    }
  if (attribute)
    H5Awrite(obj, mem[type], buf.data());
  else
    H5Dwrite(obj, mem[type], H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
}

static const hid_t kFileTypes[] = {H5T_STD_I32LE, H5T_STD_I64LE, H5T_IEEE_F32LE, H5T_IEEE_F64LE};

void add_attribute(FuzzedDataProvider& in, hid_t file, const char* name) {
  const int kind = in.ConsumeIntegralInRange<int>(0, 5);  // 0 absent, 1 string, 2-5 numbers
  if (kind == 0) return;
  std::size_t n = 1;
  hid_t space = make_space(in, in.ConsumeBool() ? 0 : 1, &n);
  if (kind == 1) {
    bool variable = false;
    hid_t t = string_type(in, &variable);
    hid_t a = checked(H5Acreate2(file, name, t, space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2");
    write_strings(in, t, variable, n, [&](hid_t type, const void* buf) { if (buf) H5Awrite(a, type, buf); });
    H5Aclose(a);
    H5Tclose(t);
  } else {
    hid_t a = checked(H5Acreate2(file, name, kFileTypes[kind - 2], space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2");
    write_numbers(in, kind - 2, n, a, true);
    H5Aclose(a);
  }
  H5Sclose(space);
}

void add_object(FuzzedDataProvider& in, hid_t file, const char* path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Lexists(file, path, H5P_DEFAULT) > 0) return;  // also fails (< 0) under an existing dataset
  H5Eclear2(H5E_DEFAULT);
  hid_t lcpl = checked(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate");
  H5Pset_create_intermediate_group(lcpl, 1);
  const int kind = in.ConsumeIntegralInRange<int>(0, 5);  // 0 group, 1 string, 2-5 numbers
  if (kind == 0) {
    hid_t g = H5Gcreate2(file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g >= 0) H5Gclose(g);
  } else {
    std::size_t n = 1;
    hid_t space = make_space(in, 4, &n);
    bool variable = false;
    hid_t t = kind == 1 ? string_type(in, &variable) : H5Tcopy(kFileTypes[kind - 2]);
    hid_t d = H5Dcreate2(file, path, t, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {  // fails where an intermediate name is already a dataset
      if (kind == 1)
        write_strings(in, t, variable, n, [&](hid_t type, const void* buf) {
          if (buf) H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        });
      else
        write_numbers(in, kind - 2, n, d, false);
      // The reader skips a /replicas/replica that is a dimension scale.
      if (H5Sget_simple_extent_ndims(space) == 1 && in.ConsumeBool()) H5DSset_scale(d, "replica");
      H5Dclose(d);
    }
    H5Tclose(t);
    H5Sclose(space);
  }
  H5Pclose(lcpl);
  H5Eclear2(H5E_DEFAULT);
}

void write_recipe_file(FuzzedDataProvider& in, const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "H5Fcreate");
  for (const char* name : kRootAttributes) add_attribute(in, file, name);
  const int n_objects = in.ConsumeIntegralInRange<int>(0, 24);
  for (int k = 0; k < n_objects && in.remaining_bytes() > 0; ++k)
    add_object(in, file, kPaths[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kPaths) - 1)]);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Lexists(file, "resume", H5P_DEFAULT) > 0) {
    H5O_info_t info{};
    if (H5Oget_info_by_name2(file, "resume", &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_GROUP) {
      hid_t g = checked(H5Gopen2(file, "resume", H5P_DEFAULT), "H5Gopen2");
      for (const char* name : kResumeAttributes) add_attribute(in, g, name);
      H5Gclose(g);
    }
  }
  H5Eclear2(H5E_DEFAULT);
  checked(H5Fclose(file), "H5Fclose");
}

void write_raw_file(const std::uint8_t* data, std::size_t size, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
    std::perror("fuzz_h5_reader: writing the input file");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = input_path();
  FuzzedDataProvider in(data, size);
  int replica = 0, checkpoint = 0;
  static const bool raw_mode = [] {
    const char* v = std::getenv("DALESIM_FUZZ_H5_RAW");
    return v && std::string(v) == "1";
  }();
  if (raw_mode && size >= 8 && std::memcmp(data, kSignature, 8) == 0) {
    write_raw_file(data, size, path);
  } else {
    replica = in.ConsumeIntegralInRange<int>(-1, 3);
    checkpoint = in.ConsumeIntegralInRange<int>(-1, 3);
    write_recipe_file(in, path);
  }
  // Each reader answers a file it cannot use with std::runtime_error (InputError is one);
  // anything else escapes and libFuzzer reports it as a crash.
  try {
    dalesim::read_run_identity(path);
  } catch (const std::runtime_error&) {
  }
  try {
    dalesim::read_run_file(path);
  } catch (const std::runtime_error&) {
  }
  try {
    dalesim::read_checkpoint_weights(path, replica, checkpoint);
  } catch (const std::runtime_error&) {
  }
  try {
    if (dalesim::has_resume_point(path)) dalesim::read_saved_state(path);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
