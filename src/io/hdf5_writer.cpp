// One copy of a run's HDF5 file (hdf5_writer.hpp): creates the layout or reopens it, writes the
// root attributes and the /replicas table, appends /history rows, /checkpoints and /resume
// (layout: docs/hdf5-layout.md).
#include <algorithm>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <tuple>

#include "io/hdf5_writer.hpp"

#include "dalesim/history.hpp"
#include "dalesim/model.hpp"
#include "dalesim/version.hpp"
#include "io/h5.hpp"
#include "io/replica_table.hpp"
#include "sweep/shard.hpp"

namespace dalesim {

const char* to_string(ReplicaStatus s) {
  switch (s) {
    case ReplicaStatus::running: return "running";
    case ReplicaStatus::complete: return "complete";
    case ReplicaStatus::diverged: return "diverged";
  }
  return "?";
}

namespace {

using replica_table::Column;
using replica_table::describe;
using replica_table::replica_columns;
using replica_table::write_column;

constexpr int kFormatVersion = 1;
constexpr std::size_t kMinChunkBytes = 16 << 10;     // below ~10 KiB, per-chunk overhead dominates
constexpr std::size_t kMaxChunkBytes = 1 << 20;      // chunks are read whole: keep them small enough
constexpr std::size_t kTargetBlockChunk = 64 << 10;  // weight chunks: a few small replicas together
constexpr unsigned kGzipLevel = 4;

struct HistoryField { const char* name; double StepMetrics::*member; const char* description; const char* units; };
const HistoryField kHistoryFields[] = {
    {"loss", &StepMetrics::loss, "task loss on the training batch of this step (the costs are apart, cost_*)", ""},
    {"accuracy", &StepMetrics::accuracy, "accuracy on the batch of this step (NaN where the task has none)",
     "fraction"},
    {"alpha", &StepMetrics::alpha, "mixing weight alpha of W_rec = alpha W_dale + (1-alpha) W_free, the mean over "
     "presynaptic units when alpha is per neuron (NaN for archs without alpha)", ""},
    {"grad_norm", &StepMetrics::grad_norm, "global gradient norm before clipping", ""},
    {"mean_rate", &StepMetrics::mean_rate, "mean of phi(v) over batch, time and units", ""},
    {"dale_violation", &StepMetrics::dale_violation, "fraction of columns of the effective W_rec with mixed signs",
     "fraction"},
    {"dale_sign_match", &StepMetrics::dale_sign_match,
     "fraction of the nonzero weights of the effective W_rec whose sign is their presynaptic type's (E +, I -)",
     "fraction"},
    {"dale_columns", &StepMetrics::dale_columns,
     "fraction of columns of the effective W_rec whose nonzero weights all have their presynaptic type's sign",
     "fraction"},
    {"alpha_e", &StepMetrics::alpha_e, "mean alpha over the excitatory columns (NaN for archs without alpha)", ""},
    {"alpha_i", &StepMetrics::alpha_i, "mean alpha over the inhibitory columns (NaN for archs without alpha)", ""},
    {"cost_l1_in", &StepMetrics::cost_l1_in, "train.l1_in x mean |W_in| of the effective input weights", ""},
    {"cost_l2_in", &StepMetrics::cost_l2_in, "train.l2_in x mean W_in^2 of the effective input weights", ""},
    {"cost_l1_rec", &StepMetrics::cost_l1_rec, "train.l1_rec x mean |W_rec| of the effective recurrent matrix", ""},
    {"cost_l2_rec", &StepMetrics::cost_l2_rec, "train.l2_rec x mean W_rec^2 of the effective recurrent matrix", ""},
    {"cost_l1_out", &StepMetrics::cost_l1_out, "train.l1_out x mean |W_out| of the effective readout", ""},
    {"cost_l2_out", &StepMetrics::cost_l2_out, "train.l2_out x mean W_out^2 of the effective readout", ""},
    {"cost_l1_free", &StepMetrics::cost_l1_free, "train.l1_free x mean |(1 - alpha_j) W_free| (the free part in W_rec)",
     ""},
    {"cost_l2_free", &StepMetrics::cost_l2_free,
     "train.l2_free x mean ((1 - alpha_j) W_free)^2 (the free part in W_rec)", ""},
    {"cost_l2_firing_rate", &StepMetrics::cost_l2_firing_rate,
     "train.l2_firing_rate x mean phi(v)^2 over time, trials and units", ""},
};

struct CheckpointField { const char* name; double Diagnostics::*member; const char* description; };
const CheckpointField kCheckpointFields[] = {
    {"spectral_radius", &Diagnostics::spectral_radius, "largest |eigenvalue| of the effective W_rec"},
    {"density", &Diagnostics::density, "fraction of the N x N recurrent connections present (falls with pruning)"},
    {"svd_entropy", &Diagnostics::svd_entropy, "normalised SVD entropy -sum p log p / log N, p = s / sum s"},
    {"effective_rank", &Diagnostics::effective_rank, "exp(-sum p log p), p = s / sum s"},
    {"rel_weight_change", &Diagnostics::rel_weight_change, "||W_t - W_0||_F / ||W_0||_F of the effective W_rec"},
    {"logw_e_mean", &Diagnostics::logw_e_mean, "mean of log|w| over nonzero weights of excitatory columns"},
    {"logw_e_std", &Diagnostics::logw_e_std, "std of log|w| over nonzero weights of excitatory columns"},
    {"logw_e_skew", &Diagnostics::logw_e_skew, "skewness of log|w| over nonzero weights of excitatory columns"},
    {"logw_i_mean", &Diagnostics::logw_i_mean, "mean of log|w| over nonzero weights of inhibitory columns"},
    {"logw_i_std", &Diagnostics::logw_i_std, "std of log|w| over nonzero weights of inhibitory columns"},
    {"logw_i_skew", &Diagnostics::logw_i_skew, "skewness of log|w| over nonzero weights of inhibitory columns"},
    {"validation_loss", &Diagnostics::validation_loss,
     "loss on the task's whole validation split (NaN for tasks without one)"},
    {"validation_accuracy", &Diagnostics::validation_accuracy,
     "accuracy on the task's whole validation split (NaN for tasks without one or without accuracy)"},
    {"test_loss", &Diagnostics::test_loss, "loss on the task's whole test split (NaN for tasks without one)"},
    {"test_accuracy", &Diagnostics::test_accuracy,
     "accuracy on the task's whole test split (NaN for tasks without one or without accuracy)"},
    {"rep_alignment", &Diagnostics::rep_alignment,
     "cosine similarity of H H^T (last-step activity on a fixed probe batch) now vs at step 0"},
    {"sign_similarity", &Diagnostics::sign_similarity,
     "fraction of (step, trial, unit) entries of the probe batch whose active/silent state is as at step 0"},
    {"units_unchanged", &Diagnostics::units_unchanged,
     "fraction of units whose whole active/silent pattern on the probe batch is as at step 0"},
    {"geometry_p1_5", &Diagnostics::geometry_p1_5,
     "dCDF from a Gaussian of the change of W_rec since step 0 in the dual coordinates of the 1.5-norm"},
    {"geometry_p2", &Diagnostics::geometry_p2, "as geometry_p1_5 for the 2-norm (gradient descent)"},
    {"geometry_p3", &Diagnostics::geometry_p3, "as geometry_p1_5 for the 3-norm"},
    {"geometry_negentropy", &Diagnostics::geometry_negentropy,
     "as geometry_p1_5 for the negative entropy (exponentiated gradient)"},
};

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Chunk of a [rows, n_cols] dataset growing along rows: about 64 rows, at least ~16 KiB, at most 1 MiB.
h5::Dims row_chunk(std::size_t n_cols, std::size_t elem_bytes) {
  std::size_t row_bytes = n_cols * elem_bytes;
  if (row_bytes > kMaxChunkBytes) return {1, kMaxChunkBytes / elem_bytes};
  std::size_t rows = std::max<std::size_t>(64, (kMinChunkBytes + row_bytes - 1) / row_bytes);
  return {std::min(rows, kMaxChunkBytes / row_bytes), n_cols};
}

// Chunk of a [C, R_g, block...] dataset: one checkpoint, whole blocks of as many replicas as make
// ~64 KiB; a block over 1 MiB is split along its first axis.
h5::Dims block_chunk(std::size_t n_replicas, const h5::Dims& block, std::size_t elem_bytes) {
  std::size_t inner = elem_bytes;
  for (std::size_t k = 1; k < block.size(); ++k) inner *= block[k];
  std::size_t block_bytes = inner * (block.empty() ? 1 : block[0]);
  h5::Dims chunk{1, 1};
  chunk.insert(chunk.end(), block.begin(), block.end());
  if (block_bytes > kMaxChunkBytes) {
    chunk[2] = std::max<std::size_t>(1, kMaxChunkBytes / inner);
  } else {
    chunk[1] = std::clamp<std::size_t>(kTargetBlockChunk / block_bytes, 1, n_replicas);
  }
  return chunk;
}

// A dimension scale holding 0..n-1: the netCDF dimension `name` of the datasets it is attached to.
h5::Dataset make_index_scale(h5::Location& parent, const std::string& name, hsize_t n, const std::string& description) {
  std::vector<std::int32_t> index(n);
  for (hsize_t k = 0; k < n; ++k) index[k] = static_cast<std::int32_t>(k);
  h5::Dataset ds = parent.create_dataset(name, H5T_STD_I32LE, h5::Dataspace::simple({n}));
  ds.write(H5T_NATIVE_INT32, index.data());
  describe(ds, description);
  ds.make_scale(name);
  return ds;
}

// The `replica` dimension scale of one group: the global replica ids. netCDF-4 looks a dataset's
// dimensions up in its own group and the groups above, so each group with a replica axis has one.
h5::Dataset make_replica_scale(h5::Location& parent, const std::vector<std::int32_t>& ids) {
  h5::Dataset ds = parent.create_dataset("replica", H5T_STD_I32LE, h5::Dataspace::simple({ids.size()}));
  ds.write(H5T_NATIVE_INT32, ids.data());
  describe(ds, "global replica id of each entry of the replica axis (as in /replicas/id)");
  ds.make_scale("replica");
  ds.set_label(0, "replica");
  return ds;
}

// Copies the swept columns of /replicas into `parent` as coordinates on its replica axis and names
// them in each dataset's `coordinates` attribute, so that netCDF tools and xarray label the replica
// axis with the sweep's parameters. A column whose name is taken in `parent` is left out.
void write_coordinates(h5::Group& parent, const std::vector<Column>& columns,
                       const std::vector<std::string>& names, const h5::Dataset& replica_scale,
                       std::vector<h5::Dataset>& datasets) {
  std::string list;
  for (const std::string& name : names) {
    auto c = std::find_if(columns.begin(), columns.end(), [&](const Column& col) { return col.name == name; });
    if (c == columns.end() || parent.exists(name)) continue;
    h5::Dataset ds = write_column(parent, *c);
    ds.attach_scale(replica_scale, 0);
    ds.set_label(0, "replica");
    list += (list.empty() ? "" : " ") + name;
  }
  if (list.empty()) return;
  for (h5::Dataset& ds : datasets) ds.set_attribute("coordinates", list);
}

// The /replicas column of each swept key, in declared order, then `seed` (the replicate axis).
std::vector<std::string> sweep_axis_columns(const Sweep& sweep, const std::vector<Column>& columns) {
  std::set<std::string> existing;
  for (const Column& c : columns) existing.insert(c.name);
  std::vector<std::string> names;
  for (const std::string& key : sweep.axis_keys) {
    bool is_new = false;
    std::string name = replica_table::axis_column_name(key, existing, &is_new);
    if (existing.count(name) && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  if (std::find(names.begin(), names.end(), "seed") == names.end()) names.push_back("seed");
  return names;
}

std::size_t chunk_bytes(const h5::Dims& chunk, std::size_t elem_bytes) {
  std::size_t n = elem_bytes;
  for (hsize_t c : chunk) n *= c;
  return n;
}

// A dataset of shape [0, rest...], extendible along axis 0 only, chunked, shuffle + gzip.
h5::Dataset make_extendible(h5::Location& parent, const std::string& name, hid_t file_type, std::size_t elem_bytes,
                            const h5::Dims& rest, const h5::Dims& chunk, const std::string& description,
                            const std::string& units = "") {
  h5::Dims dims{0}, max_dims{H5S_UNLIMITED};
  dims.insert(dims.end(), rest.begin(), rest.end());
  max_dims.insert(max_dims.end(), rest.begin(), rest.end());
  h5::PropList create = h5::PropList::dataset_create();
  create.set_chunk(chunk);
  create.set_shuffle();  // shuffle must come before deflate in the pipeline
  create.set_deflate(kGzipLevel);
  // Rows are written one at a time into partly filled chunks: keep a chunk cached between writes.
  h5::PropList access = h5::PropList::dataset_access();
  access.set_chunk_cache(521, std::max<std::size_t>(kMaxChunkBytes, 2 * chunk_bytes(chunk, elem_bytes)));
  h5::Dataset ds = parent.create_dataset(name, file_type, h5::Dataspace::simple(dims, max_dims), create, access);
  describe(ds, description, units);
  return ds;
}

}  // namespace

std::string run_log_line(const char* what, const RunInfo& info) {
  return utc_now_iso8601() + " " + what + " backend=" + info.backend + " device=" + info.device + ": " + info.command_line;
}


Hdf5Writer::Hdf5Writer(const std::string& path, const Sweep& sweep, const std::vector<ReplicaRow>& rows,
                       const RunInfo& info)
    : path_(path), R_(rows.size()) {
  if (rows.empty()) throw std::runtime_error("HDF5 writer for " + path + ": no replicas to record");
  for (const auto& row : rows)
    if (!row.config) throw std::runtime_error("HDF5 writer for " + path + ": a ReplicaRow has no config");
  file_ = h5::File::create(path, /*truncate=*/true);

  file_.set_attribute("format", "dalesim");
  file_.set_attribute("format_version", kFormatVersion);
  file_.set_attribute("dalesim_version", info.engine_version.empty() ? DALESIM_VERSION : info.engine_version);
  file_.set_attribute("git_hash", info.git_hash.empty() ? DALESIM_GIT_HASH : info.git_hash);
  file_.set_attribute("command_line", info.command_line);
  file_.set_attribute("backend", info.backend);
  file_.set_attribute("device", info.device);
  file_.set_attribute("sweep_name", sweep.name);
  file_.set_attribute("sweep_text", sweep.source_text);
  file_.set_attribute("sweep_hash", sweep_hash(sweep.source_text));
  if (info.shard_count > 0) {
    file_.set_attribute("shard_index", info.shard_index);
    file_.set_attribute("shard_count", info.shard_count);
    file_.set_attribute("sweep_n_replicas", info.sweep_n_replicas);
  }
  file_.set_attribute("resolved_config", sweep.resolved_text);
  file_.set_attribute("alpha_parameterisation", "per replica: /replicas/alpha_form (sigmoid or clamp)");
  file_.set_attribute("status", "running");
  file_.set_attribute("created", utc_now_iso8601());
  file_.set_attribute("runs", run_log_line("start", info));
  if (!info.data_files.empty()) file_.set_attribute("data_files", info.data_files);
  file_.set_attribute("n_replicas", static_cast<std::int64_t>(R_));
  const std::vector<Column> columns = replica_columns(sweep, rows);
  const std::vector<std::string> coordinates = sweep_axis_columns(sweep, columns);
  std::string axes;
  for (const std::string& name : coordinates) axes += (axes.empty() ? "" : " ") + name;
  file_.set_attribute("sweep_axes", axes);
  std::vector<std::int32_t> ids;
  for (const auto& row : rows) ids.push_back(row.config->id);

  h5::Group replicas = file_.create_group("replicas");
  describe(replicas, "one entry per replica: its configuration and final status");
  h5::Dataset replicas_scale = make_replica_scale(replicas, ids);
  for (const Column& c : columns) {
    h5::Dataset ds = write_column(replicas, c);
    ds.attach_scale(replicas_scale, 0);
    ds.set_label(0, "replica");
    if (c.name == "status") status_ = std::move(ds);
    else if (c.name == "diverged_step") diverged_step_ = std::move(ds);
  }

  h5::Group history = file_.create_group("history");
  describe(history, "per-step metrics, one row per logged step: [step, replica]");
  h5::Dims step_chunk{row_chunk(1, 8)[0]};
  history_step_ = make_extendible(history, "step", H5T_STD_I64LE, 8, {}, step_chunk, "training step of each row",
                                  "iterations");
  history_step_.make_scale("step");
  history_step_.set_label(0, "step");
  h5::Dataset history_replica = make_replica_scale(history, ids);
  for (const auto& f : kHistoryFields) {
    h5::Dataset ds = make_extendible(history, f.name, H5T_IEEE_F64LE, 8, {R_}, row_chunk(R_, 8), f.description,
                                     f.units);
    ds.attach_scale(history_step_, 0);
    ds.attach_scale(history_replica, 1);
    ds.set_label(0, "step");
    ds.set_label(1, "replica");
    history_.push_back(std::move(ds));
  }
  write_coordinates(history, columns, coordinates, history_replica, history_);
  create_checkpoint_groups(rows, columns, coordinates);
}

void Hdf5Writer::create_checkpoint_groups(const std::vector<ReplicaRow>& rows, const std::vector<Column>& columns,
                                          const std::vector<std::string>& coordinates) {
  h5::Group ckpt = file_.create_group("checkpoints");
  describe(ckpt, "per-checkpoint diagnostics [checkpoint, replica] and weights (grouped by shape)");
  checkpoint_step_ = make_extendible(ckpt, "step", H5T_STD_I64LE, 8, {}, {row_chunk(1, 8)[0]},
                                     "training step of each checkpoint", "iterations");
  checkpoint_step_.make_scale("checkpoint");
  checkpoint_step_.set_label(0, "checkpoint");
  std::vector<std::int32_t> all_ids;
  for (const auto& row : rows) all_ids.push_back(row.config->id);
  h5::Dataset checkpoint_replica = make_replica_scale(ckpt, all_ids);
  for (const auto& f : kCheckpointFields) {
    h5::Dataset ds = make_extendible(ckpt, f.name, H5T_IEEE_F64LE, 8, {R_}, row_chunk(R_, 8), f.description);
    ds.attach_scale(checkpoint_step_, 0);
    ds.attach_scale(checkpoint_replica, 1);
    ds.set_label(0, "checkpoint");
    ds.set_label(1, "replica");
    checkpoints_.push_back(std::move(ds));
  }
  write_coordinates(ckpt, columns, coordinates, checkpoint_replica, checkpoints_);

  std::map<std::tuple<int, int, int>, std::size_t> index;  // (N, I, O) -> position in shapes_
  for (std::size_t r = 0; r < rows.size(); ++r) {
    auto key = std::make_tuple(rows[r].config->model.n_units, rows[r].n_inputs, rows[r].n_outputs);
    if (std::get<0>(key) < 1 || std::get<1>(key) < 1 || std::get<2>(key) < 1)
      throw std::runtime_error("HDF5 writer for " + path_ + ": replica " + std::to_string(rows[r].config->id) +
                               " has N, I or O < 1");
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, shapes_.size()).first;
      ShapeGroup g;
      g.N = std::get<0>(key);
      g.I = std::get<1>(key);
      g.O = std::get<2>(key);
      shapes_.push_back(std::move(g));
    }
    shapes_[it->second].members.push_back(static_cast<int>(r));
  }

  h5::Group weights = ckpt.create_group("weights");
  describe(weights, "weights per shape group n<N>_i<I>_o<O>: [checkpoint, replica in group, ...], float32");
  for (ShapeGroup& g : shapes_) {
    hsize_t n = g.N, in = g.I, out = g.O, rg = g.members.size();
    g.group = weights.create_group("n" + std::to_string(g.N) + "_i" + std::to_string(g.I) + "_o" + std::to_string(g.O));
    std::vector<std::int32_t> ids;
    for (int r : g.members) ids.push_back(rows[r].config->id);
    g.replica = g.group.create_dataset("replica", H5T_STD_I32LE, h5::Dataspace::simple({rg}));
    g.replica.write(H5T_NATIVE_INT32, ids.data());
    describe(g.replica, "global replica id of each entry of this group's replica axis");
    g.replica.make_scale("replica");
    g.replica.set_label(0, "replica");
    // Every axis of a netCDF variable is a dimension; two axes of one dataset need distinct ones.
    h5::Dataset row =
        make_index_scale(g.group, "row", n, "postsynaptic unit: row of W_rec, W_dale, W_free, W_in; entry of b");
    h5::Dataset col = make_index_scale(g.group, "col", n, "presynaptic unit: column of W_rec, W_dale, W_free, W_out");
    h5::Dataset input = make_index_scale(g.group, "input", in, "input channel: column of W_in");
    h5::Dataset output = make_index_scale(g.group, "output", out, "output channel: row of W_out; entry of b_out");
    h5::Dataset index = make_index_scale(g.group, "index", n, "position of a singular value, in descending order");
    h5::Dataset bin = make_index_scale(
        g.group, "logw_bin", kLogwBins,
        "bin k of the log-weight histograms: ln|w| in [-16 + 0.5 k, -16 + 0.5 (k + 1)); the first and last bins "
        "also count what lies below and above");
    using Axis = std::pair<const char*, const h5::Dataset*>;
    auto make = [&](const char* name, const std::vector<Axis>& axes, const std::string& description) {
      h5::Dims block;
      for (const Axis& a : axes) block.push_back(a.second->dims()[0]);
      h5::Dims rest{rg};
      rest.insert(rest.end(), block.begin(), block.end());
      h5::Dataset ds = make_extendible(g.group, name, H5T_IEEE_F32LE, 4, rest, block_chunk(rg, block, 4), description);
      ds.attach_scale(checkpoint_step_, 0);
      ds.attach_scale(g.replica, 1);
      ds.set_label(0, "checkpoint");
      ds.set_label(1, "replica");
      for (std::size_t k = 0; k < axes.size(); ++k) {
        ds.attach_scale(*axes[k].second, static_cast<unsigned>(k + 2));
        ds.set_label(static_cast<unsigned>(k + 2), axes[k].first);
      }
      return ds;
    };
    const Axis r{"row", &row}, c{"col", &col}, i{"input", &input}, o{"output", &output}, s{"index", &index},
        lb{"logw_bin", &bin};
    g.W_rec = make("W_rec", {r, c}, "effective recurrent matrix [post, pre] used by the dynamics");
    g.W_dale = make("W_dale", {r, c}, "Dale part (column signs fixed by the presynaptic type)");
    g.W_free = make("W_free", {r, c}, "unconstrained part");
    g.W_in = make("W_in", {r, i}, "input weights [unit, input]");
    g.W_out = make("W_out", {o, c}, "readout weights [output, unit]");
    g.b = make("b", {r}, "recurrent bias");
    g.b_out = make("b_out", {o}, "readout bias");
    g.alpha = make("alpha", {}, "alpha, the mean over presynaptic units when per neuron (NaN for archs without alpha)");
    g.alpha_units = make("alpha_units", {c}, "alpha_j of each presynaptic unit, column j of W_rec (NaN for archs without alpha)");
    g.singular_values = make("singular_values", {s}, "singular values of W_rec, descending");
    g.logw_hist_e = make("logw_hist_e", {lb}, "histogram of ln|w| over the nonzero weights of W_rec's excitatory columns");
    g.logw_hist_i = make("logw_hist_i", {lb}, "histogram of ln|w| over the nonzero weights of W_rec's inhibitory columns");
  }
}

namespace {

void check_count(const std::string& path, std::size_t n, std::size_t R, const char* what) {
  if (n != R)
    throw std::invalid_argument("HDF5 writer for " + path + ": " + what + " has " + std::to_string(n) +
                                " entries, expected one per replica (" + std::to_string(R) + ")");
}

// Reopened extendible datasets get a chunk cache as large as make_extendible gives new ones.
h5::Dataset open_extendible(const h5::Location& parent, const std::string& name) {
  h5::PropList access = h5::PropList::dataset_access();
  access.set_chunk_cache(521, 2 * kMaxChunkBytes);
  return parent.open_dataset(name, access);
}

}  // namespace

Hdf5Writer::Hdf5Writer(const std::string& path) : path_(path) {
  file_ = h5::File::open_read_write(path);
  const h5::Group replicas = file_.open_group("replicas");
  status_ = replicas.open_dataset("status");
  diverged_step_ = replicas.open_dataset("diverged_step");
  R_ = status_.dims().at(0);
  const std::vector<std::int64_t> ids = replicas.open_dataset("id").read_int64s();
  std::map<std::int64_t, int> position;
  for (std::size_t r = 0; r < ids.size(); ++r) position[ids[r]] = static_cast<int>(r);
  const h5::Group history = file_.open_group("history");
  history_step_ = open_extendible(history, "step");
  for (const auto& f : kHistoryFields) history_.push_back(open_extendible(history, f.name));
  const h5::Group ckpt = file_.open_group("checkpoints");
  checkpoint_step_ = open_extendible(ckpt, "step");
  for (const auto& f : kCheckpointFields) checkpoints_.push_back(open_extendible(ckpt, f.name));
  const h5::Group weights = ckpt.open_group("weights");
  for (const std::string& name : weights.child_names()) {
    ShapeGroup g;
    g.group = weights.open_group(name);
    g.replica = g.group.open_dataset("replica");
    for (std::int64_t id : g.replica.read_int64s()) g.members.push_back(position.at(id));
    for (auto [ds, key] : {std::pair{&g.W_rec, "W_rec"}, {&g.W_dale, "W_dale"}, {&g.W_free, "W_free"},
                           {&g.W_in, "W_in"}, {&g.W_out, "W_out"}, {&g.b, "b"}, {&g.b_out, "b_out"},
                           {&g.alpha, "alpha"}, {&g.alpha_units, "alpha_units"}, {&g.singular_values, "singular_values"},
                           {&g.logw_hist_e, "logw_hist_e"}, {&g.logw_hist_i, "logw_hist_i"}})
      *ds = open_extendible(g.group, key);
    const h5::Dims din = g.W_in.dims(), dout = g.W_out.dims();
    g.N = static_cast<int>(din.at(2));
    g.I = static_cast<int>(din.at(3));
    g.O = static_cast<int>(dout.at(2));
    shapes_.push_back(std::move(g));
  }
}

void Hdf5Writer::check_history(const std::vector<StepMetrics>& per_replica) const {
  check_count(path_, per_replica.size(), R_, "append_history's metrics");
}

void Hdf5Writer::check_checkpoint(const std::vector<Diagnostics>& diag,
                                  const std::vector<ReplicaWeights>& weights) const {
  check_count(path_, diag.size(), R_, "append_checkpoint's diagnostics");
  check_count(path_, weights.size(), R_, "append_checkpoint's weights");
  for (const ShapeGroup& g : shapes_) {
    for (int r : g.members) {
      const ReplicaWeights& w = weights[r];
      std::size_t n = g.N, in = g.I, out = g.O;
      bool ok = w.N == g.N && w.I == g.I && w.O == g.O && w.W_rec.size() == n * n && w.W_in.size() == n * in &&
                w.W_out.size() == out * n && w.b.size() == n && w.b_out.size() == out &&
                (w.W_dale.empty() || w.W_dale.size() == n * n) && (w.W_free.empty() || w.W_free.size() == n * n) &&
                (diag[r].singular_values.empty() || diag[r].singular_values.size() == n) &&
                (diag[r].logw_hist_e.empty() || diag[r].logw_hist_e.size() == kLogwBins) &&
                (diag[r].logw_hist_i.empty() || diag[r].logw_hist_i.size() == kLogwBins);
      if (!ok)
        throw std::invalid_argument("HDF5 writer for " + path_ + ": weights of replica at position " +
                                    std::to_string(r) + " do not match its shape N=" + std::to_string(g.N) +
                                    ", I=" + std::to_string(g.I) + ", O=" + std::to_string(g.O));
    }
  }
}

void Hdf5Writer::check_state(const std::vector<ReplicaModel>& models) const {
  check_count(path_, models.size(), R_, "the resume state");
  for (const ReplicaModel& m : models)
    if ((!m.moment1.empty() && m.moment1.size() != m.params.size()) ||
        (!m.moment2.empty() && m.moment2.size() != m.params.size()))
      throw std::invalid_argument("HDF5 writer for " + path_ + ": optimiser state and parameters differ in size");
}

void Hdf5Writer::append_history(std::int64_t step, const std::vector<StepMetrics>& per_replica) {
  check_history(per_replica);
  history_step_.append_row(H5T_NATIVE_INT64, &step);
  std::vector<double> row(R_);
  for (std::size_t k = 0; k < history_.size(); ++k) {
    for (std::size_t r = 0; r < R_; ++r) row[r] = per_replica[r].*kHistoryFields[k].member;
    history_[k].append_row(H5T_NATIVE_DOUBLE, row.data());
  }
}

void Hdf5Writer::append_checkpoint(std::int64_t step, const std::vector<Diagnostics>& diag,
                                   const std::vector<ReplicaWeights>& weights) {
  check_checkpoint(diag, weights);
  checkpoint_step_.append_row(H5T_NATIVE_INT64, &step);
  std::vector<double> row(R_);
  for (std::size_t k = 0; k < checkpoints_.size(); ++k) {
    for (std::size_t r = 0; r < R_; ++r) row[r] = diag[r].*kCheckpointFields[k].member;
    checkpoints_[k].append_row(H5T_NATIVE_DOUBLE, row.data());
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> buf;
  // Gathers one field of every member into [R_g, block] and appends it; empty fields become `fill`.
  auto append = [&](h5::Dataset& ds, const ShapeGroup& g, std::size_t block, float fill, auto field) {
    buf.assign(g.members.size() * block, fill);
    for (std::size_t m = 0; m < g.members.size(); ++m) {
      const std::vector<float>& src = field(g.members[m]);
      std::copy(src.begin(), src.end(), buf.begin() + m * block);
    }
    ds.append_row(H5T_NATIVE_FLOAT, buf.data());
  };
  for (ShapeGroup& g : shapes_) {
    std::size_t n = g.N, in = g.I, out = g.O;
    append(g.W_rec, g, n * n, 0.f, [&](int r) -> const auto& { return weights[r].W_rec; });
    append(g.W_dale, g, n * n, 0.f, [&](int r) -> const auto& { return weights[r].W_dale; });
    append(g.W_free, g, n * n, 0.f, [&](int r) -> const auto& { return weights[r].W_free; });
    append(g.W_in, g, n * in, 0.f, [&](int r) -> const auto& { return weights[r].W_in; });
    append(g.W_out, g, out * n, 0.f, [&](int r) -> const auto& { return weights[r].W_out; });
    append(g.b, g, n, 0.f, [&](int r) -> const auto& { return weights[r].b; });
    append(g.b_out, g, out, 0.f, [&](int r) -> const auto& { return weights[r].b_out; });
    append(g.alpha_units, g, n, nan, [&](int r) -> const auto& { return weights[r].alpha_units; });
    append(g.singular_values, g, n, nan, [&](int r) -> const auto& { return diag[r].singular_values; });
    append(g.logw_hist_e, g, kLogwBins, nan, [&](int r) -> const auto& { return diag[r].logw_hist_e; });
    append(g.logw_hist_i, g, kLogwBins, nan, [&](int r) -> const auto& { return diag[r].logw_hist_i; });
    buf.clear();
    for (int r : g.members) buf.push_back(weights[r].alpha);
    g.alpha.append_row(H5T_NATIVE_FLOAT, buf.data());
  }
}

void Hdf5Writer::write_resume_state(std::int64_t next_iteration, const std::vector<ReplicaModel>& models) {
  check_state(models);
  std::vector<std::int64_t> offset{0}, adam_steps, diverged;
  bool f64 = false;
  for (const ReplicaModel& m : models) {
    offset.push_back(offset.back() + static_cast<std::int64_t>(m.params.size()));
    adam_steps.push_back(m.adam_steps);
    diverged.push_back(m.diverged_step);
    f64 = f64 || (m.cfg && m.cfg->train.precision == Precision::f64);
  }
  const hsize_t P = static_cast<hsize_t>(offset.back());
  // The recurrent connection masks: pruning changes them during training.
  std::vector<std::int64_t> mask_offset{0};
  std::vector<float> masks;
  for (const ReplicaModel& m : models) {
    masks.insert(masks.end(), m.mask_rec.begin(), m.mask_rec.end());
    mask_offset.push_back(static_cast<std::int64_t>(masks.size()));
  }
  std::vector<double> params, m1, m2;
  params.reserve(P), m1.reserve(P), m2.reserve(P);
  for (const ReplicaModel& m : models) {
    params.insert(params.end(), m.params.begin(), m.params.end());
    auto add = [&](std::vector<double>& out, const std::vector<double>& v) {
      if (v.empty()) out.resize(out.size() + m.params.size(), 0.0);
      else out.insert(out.end(), v.begin(), v.end());
    };
    add(m1, m.moment1);
    add(m2, m.moment2);
  }
  // Fixed-size, contiguous, uncompressed: every save overwrites the same bytes, so the file
  // does not grow. float32 when every replica trains in float32 (its values are exact there).
  if (!file_.exists("resume")) {
    h5::Group g = file_.create_group("resume");
    describe(g, "the training state at the last save point, for `dalesim run --resume`: each replica's "
                "parameters (its flat layout) and optimiser state; attribute next_iteration says where to go on");
    const hid_t real = f64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    const std::size_t n_rep = models.size();
    const struct {
      const char* name;
      hid_t type;
      hsize_t n;
      const char* description;
    } datasets[] = {
        {"offset", H5T_STD_I64LE, n_rep + 1, "replica r's values are entries offset[r] .. offset[r+1] of params, moment1, moment2"},
        {"params", real, P, "parameters, layout order"},
        {"moment1", real, P, "momentum buffer or Adam's first moment"},
        {"moment2", real, P, "Adam's second moment"},
        {"adam_steps", H5T_STD_I64LE, n_rep, "Adam updates so far (bias correction)"},
        {"diverged_step", H5T_STD_I64LE, n_rep, "iteration at which the replica diverged, -1 if live"},
        {"mask_offset", H5T_STD_I64LE, n_rep + 1, "replica r's recurrent mask is entries mask_offset[r] .. mask_offset[r+1] of mask_rec"},
        {"mask_rec", H5T_IEEE_F32LE, static_cast<hsize_t>(masks.size()), "recurrent connection masks [N, N] (0: absent or pruned)"},
    };
    for (const auto& d : datasets) {
      h5::Dataset ds = g.create_dataset(d.name, d.type, h5::Dataspace::simple({d.n}));
      describe(ds, d.description);
    }
  }
  h5::Group g = file_.open_group("resume");
  h5::Dataset off = g.open_dataset("offset");
  if (off.dims().at(0) != offset.size() || g.open_dataset("params").dims().at(0) != P)
    throw std::invalid_argument("HDF5 writer for " + path_ + ": the resume state changed size");
  off.write(H5T_NATIVE_INT64, offset.data());
  g.open_dataset("params").write(H5T_NATIVE_DOUBLE, params.data());
  g.open_dataset("moment1").write(H5T_NATIVE_DOUBLE, m1.data());
  g.open_dataset("moment2").write(H5T_NATIVE_DOUBLE, m2.data());
  g.open_dataset("adam_steps").write(H5T_NATIVE_INT64, adam_steps.data());
  g.open_dataset("diverged_step").write(H5T_NATIVE_INT64, diverged.data());
  if (g.exists("mask_rec")) {  // absent in files of an earlier version being resumed
    if (g.open_dataset("mask_rec").dims().at(0) != masks.size())
      throw std::invalid_argument("HDF5 writer for " + path_ + ": the resume state changed size");
    g.open_dataset("mask_offset").write(H5T_NATIVE_INT64, mask_offset.data());
    g.open_dataset("mask_rec").write(H5T_NATIVE_FLOAT, masks.data());
  }
  g.set_attribute("next_iteration", next_iteration);
  g.set_attribute("history_rows", static_cast<std::int64_t>(history_step_.dims().at(0)));
  g.set_attribute("checkpoint_rows", static_cast<std::int64_t>(checkpoint_step_.dims().at(0)));
}

void Hdf5Writer::check_status(const std::vector<ReplicaStatus>& status,
                              const std::vector<std::int64_t>& diverged_step) const {
  check_count(path_, status.size(), R_, "set_replica_status's status");
  check_count(path_, diverged_step.size(), R_, "set_replica_status's diverged_step");
}

void Hdf5Writer::set_replica_status(const std::vector<ReplicaStatus>& status,
                                    const std::vector<std::int64_t>& diverged_step) {
  check_status(status, diverged_step);
  std::vector<std::string> names;
  for (ReplicaStatus s : status) names.emplace_back(to_string(s));
  status_.write_strings(names);
  diverged_step_.write(H5T_NATIVE_INT64, diverged_step.data());
}

void Hdf5Writer::truncate(std::size_t history_rows, std::size_t checkpoint_rows) {
  auto cut = [](h5::Dataset& ds, std::size_t rows) {
    h5::Dims d = ds.dims();
    if (d.at(0) > rows) {
      d[0] = rows;
      ds.set_extent(d);
    }
  };
  cut(history_step_, history_rows);
  for (h5::Dataset& ds : history_) cut(ds, history_rows);
  cut(checkpoint_step_, checkpoint_rows);
  for (h5::Dataset& ds : checkpoints_) cut(ds, checkpoint_rows);
  for (ShapeGroup& g : shapes_)
    for (h5::Dataset* ds : {&g.W_rec, &g.W_dale, &g.W_free, &g.W_in, &g.W_out, &g.b, &g.b_out, &g.alpha,
                            &g.alpha_units, &g.singular_values, &g.logw_hist_e, &g.logw_hist_i})
      cut(*ds, checkpoint_rows);
}

void Hdf5Writer::close() {
  file_.set_attribute("status", "complete");
  file_.sync();  // throws if the last writes fail (e.g. a full disk)
  for (ShapeGroup& g : shapes_)
    for (h5::Dataset* ds : {&g.replica, &g.W_rec, &g.W_dale, &g.W_free, &g.W_in, &g.W_out, &g.b, &g.b_out,
                            &g.alpha, &g.alpha_units, &g.singular_values, &g.logw_hist_e, &g.logw_hist_i})
      ds->close();
  for (auto* list : {&history_, &checkpoints_})
    for (h5::Dataset& ds : *list) ds.close();
  for (h5::Dataset* ds : {&status_, &diverged_step_, &history_step_, &checkpoint_step_}) ds->close();
  for (ShapeGroup& g : shapes_) g.group.close();
  file_.close();
}

}  // namespace dalesim
