// Small helpers for the labelled HDF5 arrays of trials and simulation files: 1-D axes made
// dimension scales, gzip+shuffle datasets chunked by trial with their axes attached, and the
// time-major to trial-major copy.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "dynamics/trials_file.hpp"
#include "io/h5.hpp"

namespace dalesim {

// Writes an HDF5 file by `body` into PATH.tmp and renames it to `path` when complete, so that a
// failed or interrupted write leaves no file at `path` (and no PATH.tmp).
template <class Body>
void write_h5_then_rename(const std::string& path, Body&& body) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  h5::silence_errors();
  try {
    h5::File f = h5::File::create(tmp, /*truncate=*/true);
    body(f);
    f.close();
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    throw std::runtime_error("cannot write " + path + ": " + e.what());
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw std::runtime_error("cannot write " + path + ": " + ec.message());
  }
}

// A gzip+shuffle dataset chunked by trial, with `dims` named by `scales` (dimension scales, so that
// xarray and netCDF tools open it with labelled axes).
inline h5::Dataset create_labelled(h5::Location& where, const std::string& name, hid_t type, const h5::Dims& dims,
                   const std::vector<const h5::Dataset*>& scales, const std::vector<std::string>& labels) {
  h5::PropList plist = h5::PropList::dataset_create();
  plist.track_attribute_creation_order();
  h5::Dims chunk = dims;
  chunk[0] = 1;
  plist.set_chunk(chunk);
  plist.set_shuffle();
  plist.set_deflate(4);
  h5::Dataset ds = where.create_dataset(name, type, h5::Dataspace::simple(dims), plist);
  for (unsigned a = 0; a < scales.size(); ++a) {
    ds.attach_scale(*scales[a], a);
    ds.set_label(a, labels[a]);
  }
  return ds;
}

inline h5::Dataset make_axis(h5::Location& f, const std::string& name, const std::vector<double>& values) {
  h5::Dataset ds = f.create_dataset(name, H5T_NATIVE_DOUBLE, h5::Dataspace::simple({values.size()}));
  ds.write(H5T_NATIVE_DOUBLE, values.data());
  ds.make_scale(name);
  return ds;
}

inline std::vector<double> iota(int n, double scale = 1) {
  std::vector<double> v(n);
  for (int k = 0; k < n; ++k) v[k] = k * scale;
  return v;
}

// Trial-major copy of a time-major [T, B, C] array.
template <class V>
V to_trial_major(const V& in, int T, int B, int C) {
  V out(in.size());
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c)
        out[(static_cast<std::size_t>(b) * T + t) * C + c] = in[(static_cast<std::size_t>(t) * B + b) * C + c];
  return out;
}

// Writes the trial axes (trial, time in ms, input, output; dimension scales) and the datasets of
// `trials` (inputs, targets, mask, accuracy_label, condition, condition_name, label) into `f`.
void write_trial_arrays(h5::File& f, const TrialSet& trials, double dt);

}  // namespace dalesim
