// Tests of sweep files: expansion order, values reaching the right fields, defaults, seeds and
// every class of configuration error.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

#include "dalesim/sweep.hpp"
#include "dalesim/task.hpp"
#include "test_paths.hpp"

using namespace dalesim;

namespace {

// Parses `text` expecting a ConfigError whose message contains every fragment; returns the error.
ConfigError expect_error(const std::string& text, std::initializer_list<std::string> fragments) {
  try {
    parse_sweep(text, "demo.toml");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
    return e;
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return ConfigError("", "", "");
}

double as_double(const Value& v) { return std::get<double>(v); }

const char* demo = R"(
name = "demo"
[model]
arch = "mix"
n_units = 16
[task]
name = "adding"
T = 12
[train]
lr = 1e-3
[sweep]
seeds = 3
[sweep.grid]
"model.alpha_init" = [0.1, 0.5, 0.9]
model.e_fraction = [0.5, 0.75]
[[sweep.zip]]
"train.lr" = [1e-3, 3e-3]
"train.clip" = [1.0, 2.0]
)";

}  // namespace

TEST(SweepExpand, GridZipSeedsCountAndOrder) {
  const Sweep s = parse_sweep(demo, "demo.toml");
  EXPECT_EQ(s.name, "demo");
  ASSERT_EQ(s.replicas.size(), 3u * 2u * 2u * 3u);
  const std::vector<std::string> keys = {"model.alpha_init", "model.e_fraction", "train.lr", "train.clip", "seed"};
  EXPECT_EQ(s.axis_keys, keys);
  for (size_t r = 0; r < s.replicas.size(); ++r) {
    const ReplicaConfig& c = s.replicas[r];
    EXPECT_EQ(c.id, static_cast<int>(r));
    // Mixed radix (3, 2, 2, 3): alpha slowest, seed fastest.
    const double alphas[] = {0.1, 0.5, 0.9}, fracs[] = {0.5, 0.75}, lrs[] = {1e-3, 3e-3}, clips[] = {1.0, 2.0};
    EXPECT_EQ(c.seed, static_cast<std::int64_t>(r % 3));
    EXPECT_EQ(c.train.lr, lrs[(r / 3) % 2]);
    EXPECT_EQ(c.train.clip, clips[(r / 3) % 2]);
    EXPECT_EQ(c.model.e_fraction, fracs[(r / 6) % 2]);
    EXPECT_EQ(c.model.alpha_init, alphas[r / 12]);
    ASSERT_EQ(c.axes.size(), 5u);
    for (size_t a = 0; a < 5; ++a) EXPECT_EQ(c.axes[a].first, keys[a]);
    EXPECT_EQ(as_double(c.axes[0].second), c.model.alpha_init);
    EXPECT_EQ(std::get<std::int64_t>(c.axes[4].second), c.seed);
    EXPECT_EQ(c.model.n_units, 16);
    EXPECT_EQ(std::get<std::int64_t>(c.task.params.at("T")), 12);
  }
}

TEST(SweepExpand, DeclaredOrderNotAlphabetical) {
  const Sweep s = parse_sweep("[sweep.grid]\ntrain.lr = [0.1, 0.2]\nmodel.g = [1.0, 2.0, 3.0]\n", "t");
  ASSERT_EQ(s.axis_keys, (std::vector<std::string>{"train.lr", "model.g"}));
  ASSERT_EQ(s.replicas.size(), 6u);
  EXPECT_EQ(s.replicas[1].model.g, 2.0);  // model.g is declared last, so it varies fastest
  EXPECT_EQ(s.replicas[1].train.lr, 0.1);
  EXPECT_EQ(s.replicas[3].train.lr, 0.2);
}

TEST(SweepExpand, NoSweepSectionIsOneReplica) {
  const Sweep s = parse_sweep("seed = 4\n", "t");
  ASSERT_EQ(s.replicas.size(), 1u);
  EXPECT_TRUE(s.axis_keys.empty());
  EXPECT_TRUE(s.replicas[0].axes.empty());
  EXPECT_EQ(s.replicas[0].seed, 4);
}

TEST(SweepExpand, GridWinsOverBase) {
  const Sweep s = parse_sweep("[model]\nn_units = 32\n[sweep.grid]\n\"model.n_units\" = [8, 12]\n", "t");
  ASSERT_EQ(s.replicas.size(), 2u);
  EXPECT_EQ(s.replicas[0].model.n_units, 8);
  EXPECT_EQ(s.replicas[1].model.n_units, 12);
}

TEST(SweepValues, AppliedToTheRightFields) {
  const Sweep s = parse_sweep(R"(
[model]
arch = "colei"
n_units = 10
e_fraction = 0.7
tau_e = 50
tau_i = 25.0
dt = 5.0
phi = "tanh"
sigma_rec = 0.05
p_ee = 0.9
p_ei = 0.8
p_ie = 0.7
p_ii = 0.6
autapses = true
readout_from = "exc"
input_to = "exc"
input_sign = "positive"
free_init = "orthogonal"
g = 1.2
rho = 0.9
g_in = 0.5
alpha_init = 0.3
[task]
batch = 7
[train]
optimizer = "sgd"
lr = 0.01
lr_alpha = 0.02
momentum = 0.5
beta1 = 0.8
beta2 = 0.99
eps = 1e-6
clip = 0
n_steps = 11
log_every = 3
checkpoint_every = 4
dale = "clamp"
precision = "double"
kernel = "v2"
)",
                              "t");
  const ModelConfig& m = s.replicas.at(0).model;
  EXPECT_EQ(m.arch, Arch::colei);
  EXPECT_EQ(m.n_units, 10);
  EXPECT_EQ(m.e_fraction, 0.7);
  EXPECT_EQ(m.tau_e, 50.0);
  EXPECT_EQ(m.tau_i, 25.0);
  EXPECT_EQ(m.dt, 5.0);
  EXPECT_EQ(m.phi, Phi::tanh);
  EXPECT_EQ(m.sigma_rec, 0.05);
  EXPECT_EQ(m.p_ee, 0.9);
  EXPECT_EQ(m.p_ei, 0.8);
  EXPECT_EQ(m.p_ie, 0.7);
  EXPECT_EQ(m.p_ii, 0.6);
  EXPECT_TRUE(m.autapses);
  EXPECT_EQ(m.readout_from, Population::exc);
  EXPECT_EQ(m.input_to, Population::exc);
  EXPECT_EQ(m.input_sign, InputSign::positive);
  EXPECT_EQ(m.free_init, FreeInit::orthogonal);
  EXPECT_EQ(m.g, 1.2);
  EXPECT_EQ(m.rho, 0.9);
  EXPECT_EQ(m.g_in, 0.5);
  EXPECT_EQ(m.alpha_init, 0.3);
  const ReplicaConfig& c = s.replicas[0];
  EXPECT_EQ(c.task.batch, 7);
  EXPECT_EQ(c.train.optimizer, Optim::sgd);
  EXPECT_EQ(c.train.lr, 0.01);
  EXPECT_EQ(c.train.lr_alpha, 0.02);
  EXPECT_EQ(c.train.momentum, 0.5);
  EXPECT_EQ(c.train.beta1, 0.8);
  EXPECT_EQ(c.train.beta2, 0.99);
  EXPECT_EQ(c.train.eps, 1e-6);
  EXPECT_EQ(c.train.clip, 0.0);
  EXPECT_EQ(c.train.n_steps, 11);
  EXPECT_EQ(c.train.log_every, 3);
  EXPECT_EQ(c.train.checkpoint_every, 4);
  EXPECT_EQ(c.train.precision, Precision::f64);
  EXPECT_EQ(c.train.kernel, CudaKernel::v2);
}

TEST(SweepValues, Defaults) {
  const Sweep s = parse_sweep("", "t");
  EXPECT_EQ(s.name, "sweep");
  ASSERT_EQ(s.replicas.size(), 1u);
  const ReplicaConfig& c = s.replicas[0];
  const ReplicaConfig d;
  EXPECT_EQ(c.model.arch, d.model.arch);
  EXPECT_EQ(c.model.n_units, d.model.n_units);
  EXPECT_EQ(c.model.e_fraction, d.model.e_fraction);
  EXPECT_EQ(c.model.dt, d.model.dt);
  EXPECT_EQ(c.task.name, "adding");
  EXPECT_EQ(c.task.batch, d.task.batch);
  EXPECT_EQ(c.train.lr, d.train.lr);
  EXPECT_EQ(c.train.lr_alpha, -1.0);
  EXPECT_EQ(c.train.n_steps, d.train.n_steps);
  EXPECT_EQ(c.train.kernel, CudaKernel::auto_select);
  EXPECT_EQ(c.seed, 0);
  // The task's defaults are filled in, so each replica carries its full task config.
  EXPECT_EQ(std::get<std::int64_t>(c.task.params.at("T")), 20);
  for (const KeySpec& k : config_keys()) {
    if (k.key == "model.n_units") {
      EXPECT_EQ(k.default_text, "64");
    }
  }
}

TEST(SweepValues, IntPromotedToFloat) {
  const Sweep s = parse_sweep("[train]\nlr = 1\n[sweep.grid]\n\"model.g\" = [1, 2]\n", "t");
  EXPECT_EQ(s.replicas[0].train.lr, 1.0);
  ASSERT_TRUE(std::holds_alternative<double>(s.replicas[1].axes[0].second));
  EXPECT_EQ(s.replicas[1].model.g, 2.0);
  const Sweep p = parse_sweep("[task]\nname = \"perceptual_dm\"\nfixation_ms = 200\n", "t");
  ASSERT_TRUE(std::holds_alternative<double>(p.replicas[0].task.params.at("fixation_ms")));
}

TEST(SweepSeeds, DerivedUnlessExplicit) {
  const Sweep a = parse_sweep("seed = 7\n", "t");
  EXPECT_EQ(a.replicas[0].init_seed, derive_seed(7, "init"));
  EXPECT_EQ(a.replicas[0].data_seed, derive_seed(7, "data"));
  EXPECT_EQ(a.replicas[0].noise_seed, derive_seed(7, "noise"));
  EXPECT_NE(a.replicas[0].init_seed, a.replicas[0].data_seed);
  const Sweep b = parse_sweep("seed = 7\ninit_seed = 42\n", "t");
  EXPECT_EQ(b.replicas[0].init_seed, 42u);
  EXPECT_EQ(b.replicas[0].data_seed, derive_seed(7, "data"));
  const Sweep c = parse_sweep("data_seed = 5\n[sweep]\nseeds = [1, 5, 9]\n", "t");
  ASSERT_EQ(c.replicas.size(), 3u);
  EXPECT_EQ(c.replicas[2].seed, 9);
  EXPECT_EQ(c.replicas[2].init_seed, derive_seed(9, "init"));
  EXPECT_EQ(c.replicas[2].data_seed, 5u);  // explicit: shared by every seed (paired data)
}

TEST(SweepTask, ParamSweep) {
  const Sweep s = parse_sweep("[task]\nname = \"adding\"\n[sweep.grid]\n\"task.T\" = [10, 30]\n", "t");
  ASSERT_EQ(s.replicas.size(), 2u);
  EXPECT_EQ(std::get<std::int64_t>(s.replicas[0].task.params.at("T")), 10);
  EXPECT_EQ(std::get<std::int64_t>(s.replicas[1].task.params.at("T")), 30);
  EXPECT_EQ(s.axis_keys, std::vector<std::string>{"task.T"});
}

TEST(SweepTask, ListParamSweptWithListOfLists) {
  const Sweep s = parse_sweep(
      "[task]\nname = \"perceptual_dm\"\n[sweep.grid]\n\"task.coherences\" = [[6.4, 51.2], [0, 12.8, 25]]\n", "t");
  ASSERT_EQ(s.replicas.size(), 2u);
  EXPECT_EQ(std::get<std::vector<double>>(s.replicas[1].task.params.at("coherences")),
            (std::vector<double>{0, 12.8, 25}));
}

TEST(SweepErrors, UnknownSectionAndKey) {
  expect_error("[optimizer]\nlr = 0.1\n", {"optimizer.lr", "0.1"});
  expect_error("[model]\nn_unit = 8\n", {"model.n_unit", "8", "did you mean model.n_units?", "demo.toml:2"});
  expect_error("modle.n_units = 8\n", {"modle.n_units", "did you mean model.n_units?"});
  expect_error("[train]\nn_units = 8\n", {"train.n_units", "did you mean model.n_units?"});
  expect_error("[sweep]\nseed = 3\n", {"sweep.seed", "did you mean sweep.seeds?"});
}

TEST(SweepErrors, WrongType) {
  expect_error("[model]\nn_units = 8.5\n", {"model.n_units", "8.5", "expected int"});
  expect_error("[model]\narch = 3\n", {"model.arch", "3", "expected string"});
  expect_error("[train]\nlr = \"fast\"\n", {"train.lr", "\"fast\"", "expected float"});
  expect_error("[model]\nautapses = 1\n", {"model.autapses", "1", "expected bool"});
  expect_error("[model]\nn_units = [8, 16]\n", {"model.n_units", "[8, 16]", "sweep.grid"});
  expect_error("seed = 1979-05-27\n", {"seed", "1979-05-27", "wrong type"});
}

TEST(SweepErrors, OutOfRange) {
  expect_error("[model]\nn_units = 5000\n", {"model.n_units", "5000", "[2, 4096]"});
  expect_error("[model]\nalpha_init = 1.0\n", {"model.alpha_init", "1.0", "(0, 1)"});
  expect_error("[model]\narch = \"lstm\"\n", {"model.arch", "\"lstm\"", "\"dann\""});
  expect_error("[train]\nkernel = \"v4\"\n", {"train.kernel", "\"v4\"", "\"auto\", \"v1\", \"v2\", \"v3\""});
  expect_error("[train]\nlr = 0\n", {"train.lr", "0", "(0, 1000000]"});
  expect_error("seed = -1\n", {"seed", "-1", ">= 0"});
  expect_error("[model]\narch = \"colei\"\ne_fraction = 1.0\n", {"model.e_fraction", "1.0", "colei"});
  expect_error("[model]\narch = \"mix\"\nn_units = 2\ne_fraction = 0.9\n", {"model.e_fraction", "n_inh = 0"});
  EXPECT_NO_THROW(parse_sweep("[model]\narch = \"free\"\ne_fraction = 1.0\n", "t"));
  expect_error("[model]\ndt = 25.5\ntau_i = 20.5\n", {"model.dt", "25.5", "20.5"});
  // Checked per resolved replica, with the key as written in the grid.
  expect_error("[model]\narch = \"colei\"\n[sweep.grid]\n\"model.e_fraction\" = [0.5, 0.0]\n",
               {"sweep.grid.model.e_fraction", "0.0"});
}

TEST(SweepErrors, Tasks) {
  expect_error("[task]\nname = \"addng\"\n", {"task.name", "\"addng\"", "adding", "perceptual_dm"});
  expect_error("[task]\nTT = 5\n", {"task.TT", "5", "T", "positions"});
  expect_error("[task]\nT = 1\n", {"task.T", "1"});
  expect_error("[task]\nT = 10.5\n", {"task.T", "10.5", "int"});
  expect_error("[sweep.grid]\n\"task.T\" = [10, 1]\n", {"sweep.grid.task.T", "1", "demo.toml:2"});
  expect_error("[task]\nname = \"perceptual_dm\"\ncoherences = []\n", {"task.coherences", "[]"});
  expect_error("[task]\nbatch = 0\n", {"task.batch", "0"});
}

TEST(SweepErrors, GridShapes) {
  expect_error("[sweep.grid]\n\"model.n_units\" = []\n", {"sweep.grid.model.n_units", "[]", "empty grid list"});
  expect_error("[sweep.grid]\n", {"sweep.grid", "empty grid"});
  expect_error("[sweep.grid]\n\"model.g\" = 2.0\n", {"sweep.grid.model.g", "2.0", "non-empty list"});
  expect_error("[sweep.grid]\n\"model.n_unitz\" = [8]\n", {"sweep.grid.model.n_unitz", "did you mean model.n_units?"});
  expect_error("[sweep.grid]\n\"model.n_units\" = [8, 99999]\n", {"sweep.grid.model.n_units", "99999"});
  expect_error("[sweep.grid]\nname = [\"a\", \"b\"]\n", {"sweep.grid.name", "cannot be swept"});
  expect_error("[sweep.grid]\n\"model.g\" = [1.0]\n[[sweep.zip]]\n\"model.g\" = [2.0]\n",
               {"model.g", "duplicate axis"});
  expect_error("[sweep.grid]\n\"model.g\" = [1.0]\nmodel.g = [2.0]\n", {"model.g", "duplicate axis"});
  expect_error("[sweep]\nseeds = 2\n[sweep.grid]\nseed = [1, 2]\n", {"sweep.seeds", "duplicate axis"});
  expect_error("[[sweep.zip]]\n\"train.lr\" = [0.1, 0.2]\n\"train.clip\" = [1.0]\n",
               {"sweep.zip.train.clip", "[1.0]", "length 2"});
  expect_error("[[sweep.zip]]\n", {"sweep.zip", "empty zip"});
}

TEST(SweepErrors, Seeds) {
  expect_error("[sweep]\nseeds = 0\n", {"sweep.seeds", "0"});
  expect_error("[sweep]\nseeds = -2\n", {"sweep.seeds", "-2"});
  expect_error("[sweep]\nseeds = [1, 2.5]\n", {"sweep.seeds", "2.5"});
  expect_error("[sweep]\nseeds = []\n", {"sweep.seeds", "[]"});
  expect_error("[sweep]\nseeds = 2.0\n", {"sweep.seeds", "2.0"});
}

TEST(SweepErrors, TooManyReplicas) {
  expect_error("[sweep]\nseeds = 1000001\n", {"sweep.seeds", "1000000"});
  std::string text = "[sweep]\nseeds = 1001\n[sweep.grid]\n\"model.g\" = [";
  for (int i = 1; i <= 1000; ++i) text += (i > 1 ? ", " : "") + std::to_string(i) + ".0";
  expect_error(text + "]\n", {"1000000 replicas"});
}

TEST(SweepErrors, TableHeaderWithoutKey) {
  // toml++ 3.3.0 asserted on these instead of reporting them (an abort in debug builds, undefined
  // behaviour in optimised clang builds); found by tests/fuzz/fuzz_sweep.cpp, see sweep/toml.hpp.
  for (const char* text : {"[#\n", "[\n", "name = \"x\"\n[[=\n"}) expect_error(text, {"valid TOML syntax"});
}

TEST(SweepErrors, NonAsciiOutsideStrings) {
  // toml++ 3.3.0 asks "whitespace?" of these, which is undefined behaviour for most non-ASCII
  // code points; found by tests/fuzz/fuzz_sweep.cpp, see sweep/toml.hpp.
  expect_error("\xc3\xa9 = 1\n", {"demo.toml:1:1;", "non-ASCII character outside a string"});
  expect_error("[model]\nn_units = 8 \xc3\xa9\n", {"demo.toml:2:13;", "non-ASCII"});
  expect_error("[sweep.grid]\n\"model.g\" = [1.0, \xef\xbb\x99]\n", {"demo.toml:2:", "non-ASCII"});
  expect_error("name = \"\"\"\\\n  \xc2\xa7\"\"\"\n", {"demo.toml:2:3;", "line-ending backslash"});
  expect_error("name = \"\"\"\\\xc2\xa7\n\"\"\"\n", {"demo.toml:1:12;", "after a backslash"});
  expect_error("seed = 2a\"\xce\xa0\n", {"demo.toml:1:11;", "outside a string"});
  expect_error("seed = 4e.'\xce\xa0'\n", {"demo.toml:1:12;", "outside a string"});
  // '=' inside a bare value does not end it for toml++, so the quote after it opens no string.
  expect_error("e=2-dn\x01e='na\"\xce\xa0'\n", {"demo.toml:1:13;", "outside a string"});
  // A quoted part of a dotted key is a string: its key is unknown, the syntax fine.
  expect_error("model.\"n_\xc3\xbcnits\" = 8\n", {"unknown key"});
}

TEST(SweepFile, NonAsciiInStringsAndComments) {
  const Sweep a = parse_sweep("# caf\xc3\xa9\nname = \"\xc3\xbc \\\" \xc3\xa9\" # \xc3\xa9\n", "demo.toml");
  EXPECT_EQ(a.name, "\xc3\xbc \" \xc3\xa9");
  const Sweep b = parse_sweep("name = '''\n\xc3\xa9'''\n", "demo.toml");
  EXPECT_EQ(b.name, "\xc3\xa9");
  const Sweep c = parse_sweep("name = \"\"\"a\\\n  b\xc3\xa9\"\"\"\"\"\n", "demo.toml");
  EXPECT_EQ(c.name, "ab\xc3\xa9\"\"");
}

TEST(SweepErrors, UnknownTableRenderedInTheMessage) {
  // toml++'s own printer is undefined behaviour for floats below 1 (found by fuzz_sweep).
  expect_error("[sweep.gird]\n\"model.g\" = [0.1, 0.5]\n", {"sweep.gird = { \"model.g\" = [0.1, 0.5] }"});
}

TEST(SweepErrors, TomlSyntax) {
  const ConfigError e = expect_error("[model]\nn_units = \n", {"demo.toml:2:"});
  EXPECT_EQ(e.key().rfind("demo.toml:2:", 0), 0u) << e.key();
  EXPECT_FALSE(e.hint().empty());
}

TEST(SweepFile, MinimalLoads) {
  const Sweep s = load_sweep_file(dalesim::test::source_dir() + "/data/sweeps/minimal.toml");
  EXPECT_EQ(s.name, "minimal");
  ASSERT_EQ(s.replicas.size(), 2u);
  for (const ReplicaConfig& c : s.replicas) {
    EXPECT_EQ(c.model.arch, Arch::free);
    EXPECT_EQ(c.model.n_units, 8);
    EXPECT_EQ(std::get<std::int64_t>(c.task.params.at("T")), 10);
    EXPECT_EQ(c.train.n_steps, 5);
  }
  EXPECT_EQ(s.replicas[1].seed, 1);
  EXPECT_FALSE(s.source_text.empty());
  EXPECT_NE(s.source_path.find("minimal.toml"), std::string::npos);
}

TEST(SweepFile, NameDefaultsToStemAndMissingFileIsConfigError) {
  const std::string path = ::testing::TempDir() + "sweep_stem_test.toml";
  std::ofstream(path) << "[train]\nn_steps = 3\n";
  EXPECT_EQ(load_sweep_file(path).name, "sweep_stem_test");
  std::remove(path.c_str());
  try {
    load_sweep_file(path);
    ADD_FAILURE() << "missing file accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "sweep file");
    EXPECT_EQ(e.value(), path);
  }
}

TEST(SweepResolved, ReparsesToTheSameReplicas) {
  const Sweep s = parse_sweep(demo, "demo.toml");
  for (const char* frag :
       {"n_units = 16", "T = 12", "positions = \"halves\"", "[sweep.grid]", "[[sweep.zip]]", "seeds = 3"})
    EXPECT_NE(s.resolved_text.find(frag), std::string::npos) << frag << " not in:\n" << s.resolved_text;
  const Sweep again = parse_sweep(s.resolved_text, "resolved");
  ASSERT_EQ(again.replicas.size(), s.replicas.size());
  EXPECT_EQ(again.name, s.name);
  EXPECT_EQ(again.axis_keys, s.axis_keys);
  for (size_t r = 0; r < s.replicas.size(); ++r) {
    EXPECT_EQ(again.replicas[r].train.lr, s.replicas[r].train.lr);
    EXPECT_EQ(again.replicas[r].model.e_fraction, s.replicas[r].model.e_fraction);
    EXPECT_EQ(again.replicas[r].init_seed, s.replicas[r].init_seed);
  }
}

TEST(SweepResolved, SeedListAndTaskParamsRoundTrip) {
  const Sweep s = parse_sweep(
      "[task]\nname = \"perceptual_dm\"\nfixation_ms = 200\n[sweep]\nseeds = [4, 2]\n"
      "[sweep.grid]\n\"task.coherences\" = [[6.4], [12.8, 25.6]]\n",
      "t");
  const Sweep again = parse_sweep(s.resolved_text, "resolved");
  ASSERT_EQ(again.replicas.size(), 4u);
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(again.replicas[r].seed, s.replicas[r].seed);
    EXPECT_EQ(again.replicas[r].task.params, s.replicas[r].task.params);
  }
  EXPECT_EQ(s.replicas[1].seed, 2);
}

TEST(SweepDocs, EveryKeyIsDocumented) {
  std::ifstream in(dalesim::test::source_dir() + "/docs/sweep-format.md");
  ASSERT_TRUE(in) << "docs/sweep-format.md missing";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const KeySpec& k : config_keys()) {
    EXPECT_NE(doc.find("| `" + k.key + "` |"), std::string::npos) << k.key << " not in the key table";
    EXPECT_NE(doc.find(k.allowed), std::string::npos) << k.key << ": allowed text '" << k.allowed << "' not in docs";
  }
}

namespace dalesim {
namespace {
TEST(SweepFormat, ValuesPrintAsAUserWouldWriteThem) {
  EXPECT_EQ(format_value(Value{100.0}), "100.0");
  EXPECT_EQ(format_value(Value{0.005}), "0.005");
  EXPECT_EQ(format_value(Value{2.5e20}), "2.5e+20");
  EXPECT_EQ(format_value(Value{std::int64_t{7}}), "7");
  EXPECT_EQ(format_value(Value{std::string("mix")}), "\"mix\"");
  EXPECT_EQ(format_value(Value{std::vector<double>{0.0, 6.4}}), "[0.0, 6.4]");
}
}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {
TEST(SweepTask, PerTaskTablesApplyOnlyToTheirTask) {
  const Sweep s = parse_sweep(R"(
[task]
batch = 4
[task.adding]
T = 7
[task.copy]
T = 5
[sweep.grid]
"task.name" = ["adding", "copy", "perceptual_dm"]
)",
                              "t");
  ASSERT_EQ(s.replicas.size(), 3u);
  EXPECT_EQ(std::get<std::int64_t>(s.replicas[0].task.params.at("T")), 7);
  EXPECT_EQ(std::get<std::int64_t>(s.replicas[1].task.params.at("T")), 5);
  EXPECT_EQ(s.replicas[2].task.params.count("T"), 0u);  // perceptual_dm has no T
  // An axis over the parameter still wins over the table.
  const Sweep g = parse_sweep("[task.adding]\nT = 7\n[sweep.grid]\n\"task.T\" = [9, 11]\n", "t");
  EXPECT_EQ(std::get<std::int64_t>(g.replicas[1].task.params.at("T")), 11);
  try {
    parse_sweep("[task.adding]\nlength = 7\n", "t");
    FAIL() << "an unknown parameter of a per-task table was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("task.adding.length"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("positions"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_sweep("[task.adding]\nT = 1\n", "t"), ConfigError);  // out of range, checked per replica
}
}  // namespace
}  // namespace dalesim

namespace dalesim {
namespace {
// Every sweep file shipped in data/sweeps (examples, reproductions, studies) parses and expands.
TEST(SweepFiles, EveryShippedSweepParses) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dalesim::test::source_dir() + "/data/sweeps")) {
    if (e.path().extension() != ".toml") continue;
    ++n;
    try {
      const Sweep s = load_sweep_file(e.path().string());
      EXPECT_GT(s.replicas.size(), 0u) << e.path();
    } catch (const std::exception& ex) {
      ADD_FAILURE() << e.path() << ": " << ex.what();
    }
  }
  EXPECT_GE(n, 5);
}
}  // namespace
}  // namespace dalesim
