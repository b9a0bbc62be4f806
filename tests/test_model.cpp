// Models: predictions and the contract (the processes alone: test_process.cpp). The same
// Gaussian exported under every process × prediction gives the same samples; a flow model
// sampled from t = 1 is exact; the denoiser counts the model evaluations a solver makes.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cmath>
#include <functional>
#include <limits>

#include "diffode/core/error.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/process.hpp"
#include "diffode/runs/sampler.hpp"
#include "test_util.hpp"

using namespace diffode;
using nlohmann::json;

namespace {

using test::schedule;

Model load(const std::string& file, const std::string& dtype = "float64", json overrides = json::object()) {
  ModelOptions opt;
  opt.path = test::model_path(file);
  opt.dtype = dtype;
  opt.overrides = std::move(overrides);
  return Model::load(opt);
}

Tensor sample(const Model& m, const std::string& solver, const Grid& grid, at::ScalarType state = at::kDouble,
              bool afs = false) {
  ModelDenoiser den(m, state);
  const Tensor eps = make_noise(3, 0, 6, m.meta().sample_shape).to(state);
  return integrate(find_solver(solver), den, eps, grid, {afs, 0}, false);
}

std::string load_error(const std::string& file, json overrides = json::object()) {
  try {
    load(file, "float32", std::move(overrides));
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Equivalence, EveryProcessAndPredictionGivesTheSameSamples) {
  const Grid grid = {80, 20, 5, 1, 0.3, 0.05, 0.002};
  const Tensor ref = sample(load("gauss/edm_x0.pt"), "heun", grid);
  for (const char* process : {"edm", "vp", "flow"})
    for (const char* pred : {"x0", "eps", "v", "velocity"}) {
      const std::string file = std::string("gauss/") + process + "_" + pred + ".pt";
      const Model m = load(file);
      EXPECT_EQ(m.meta().prediction, pred);
      EXPECT_EQ(m.meta().process.name(), process);
      const double diff = (sample(m, "heun", grid) - ref).abs().max().item<double>();
      EXPECT_LT(diff, 1e-9) << file;
      // With float32 model calls the agreement is to float32 rounding.
      const double diff32 = (sample(load(file, "float32"), "dpmpp2m", grid, at::kFloat) -
                             sample(load("gauss/edm_x0.pt", "float32"), "dpmpp2m", grid, at::kFloat))
                                .abs().max().item<double>();
      EXPECT_LT(diff32, 2e-4) << file;
    }
}

TEST(Flow, SamplingFromTimeOneIsFiniteAndConvergesToTheExactSolution) {
  // From σ̃ = inf to 0 the exact solution of N(μ, s²I) data is x0 = μ + s ε.
  const json range = {{"sigma_max", "inf"}, {"sigma_min", 0}};
  for (const char* pred : {"velocity", "x0", "v"}) {
    const Model m = load(std::string("gauss/flow_") + pred + ".pt", "float64", range);
    ASSERT_TRUE(std::isinf(m.meta().sigma_max));
    const auto& meta = m.archive_metadata();
    const Tensor mu = at::tensor(meta["gauss_mu"].get<std::vector<double>>(), at::kDouble).view({3, 8, 8});
    const Tensor exact = mu + meta["gauss_s"].get<double>() * make_noise(3, 0, 6, {3, 8, 8}).to(at::kDouble);
    const SigmaRange r{m.meta().sigma_min, m.meta().sigma_max, m.meta().process};
    double prev = INFINITY;
    for (int n : {8, 32, 128}) {
      const Grid g = make_grid(schedule("time_uniform"), n, r);
      ASSERT_TRUE(std::isinf(g.front()));
      ASSERT_EQ(g.back(), 0.0);
      const Tensor x = sample(m, "heun", g);
      ASSERT_TRUE(x.isfinite().all().item<bool>()) << pred << " n=" << n;
      const double err = (x - exact).abs().max().item<double>();
      EXPECT_LT(err, prev) << pred << " n=" << n;
      prev = err;
      EXPECT_TRUE(sample(m, "dpmpp3m", g, at::kDouble, true).isfinite().all().item<bool>());
    }
    EXPECT_LT(prev, 1e-3) << pred;
  }
}

TEST(Flow, EpsModelCannotStartAtPureNoise) {
  const std::string msg = load_error("gauss/flow_eps.pt", {{"sigma_max", "inf"}});
  EXPECT_NE(msg.find("no x0 estimate at pure noise"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sigma_max"), std::string::npos) << msg;
}

TEST(Contract, InfiniteSigmaMaxOnlyWhereTheProcessReachesIt) {
  const std::string msg = load_error("gauss/edm_x0.pt", {{"sigma_max", "inf"}});
  EXPECT_NE(msg.find("beyond process 'edm'"), std::string::npos) << msg;
}

TEST(Contract, OverridesWinOverArchiveMetadata) {
  const Model m = load("gauss.pt", "float32", {{"sigma_min", 0.01}, {"data_range", {-2, 2}}});
  EXPECT_EQ(m.meta().sigma_min, 0.01);
  EXPECT_EQ(m.meta().data_lo, -2);
  EXPECT_EQ(m.meta().sigma_max, 80);
}

// A huge description is recorded cut (it is copied into every record of a run).
TEST(Contract, AHugeDescriptionIsRecordedCut) {
  const std::string text(50000, 'd');
  const Model m = load("gauss.pt", "float32", {{"description", text}});
  EXPECT_EQ(m.meta().description, text.substr(0, 4096) + "... (50000 characters)");
  EXPECT_EQ(m.meta().json["description"], m.meta().description);
  EXPECT_EQ(load("gauss.pt", "float32", {{"description", "short"}}).meta().json["description"], "short");
}

TEST(Contract, BadOverridesAreNamed) {
  EXPECT_NE(load_error("gauss.pt", {{"prediction", "noise"}}).find("unknown prediction 'noise'"), std::string::npos);
  EXPECT_NE(load_error("gauss.pt", {{"sigma_min", 100}}).find("need sigma_min < sigma_max"), std::string::npos);
  const std::string shape = load_error("gauss.pt", {{"sample_shape", {3, 4, 4}}});
  EXPECT_NE(shape.find("sample_shape"), std::string::npos) << shape;
}

TEST(Contract, NoMetadataNeedsTheKeysFromTheConfig) {
  ModelOptions opt;
  opt.path = test::data_path("no_meta.pt");
  try {
    Model::load(opt);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("set model.prediction"), std::string::npos) << e.what();
  }
  opt.overrides = {{"prediction", "x0"}, {"process", {{"type", "edm"}}}, {"sample_shape", {3, 8, 8}}};
  const Model m = Model::load(opt);
  EXPECT_EQ(m.meta().sigma_max, 80);  // the process default
  EXPECT_TRUE(m.archive_metadata().empty());
}

TEST(Contract, ProbeReportsBrokenModels) {
  auto error_of = [](const std::string& name) {
    ModelOptions opt;
    opt.path = test::data_path(name);
    try {
      Model::load(opt);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of("no_forward.pt").find("forward takes 1 argument(s)"), std::string::npos) << error_of("no_forward.pt");
  EXPECT_NE(error_of("wrong_shape.pt").find("returned shape [2, 1, 8, 8]"), std::string::npos) << error_of("wrong_shape.pt");
  EXPECT_NE(error_of("wrong_dtype.pt").find("expected a floating-point tensor"), std::string::npos) << error_of("wrong_dtype.pt");
  EXPECT_NE(error_of("not_a_model.pt").find("not a loadable TorchScript archive"), std::string::npos);
  EXPECT_NE(error_of("bad_meta.pt").find("diffode.json:1:"), std::string::npos) << error_of("bad_meta.pt");
  EXPECT_NE(error_of("missing.pt").find("does not exist"), std::string::npos);
}

namespace {

// Counts the calls a solver makes, in every form, passing each to the model's denoiser.
class CountingDenoiser final : public Denoiser {
 public:
  explicit CountingDenoiser(ModelDenoiser& inner) : inner_(inner) {}
  Tensor denoise(const Tensor& x, double sigma) override {
    ++calls;
    return inner_.denoise(x, sigma);
  }
  Tensor denoise(const Tensor& x, const Tensor& sigma) override {
    ++calls;
    return inner_.denoise(x, sigma);
  }
  Denoised denoise_with_feature(const Tensor& x, double sigma) override {
    ++calls;
    return inner_.denoise_with_feature(x, sigma);
  }
  int64_t feature_dim() const override { return inner_.feature_dim(); }
  int64_t calls = 0;

 private:
  ModelDenoiser& inner_;
};

// The NFE a solver documents (SolverInfo::nfe_rule, as `diffode solvers` prints it) for N
// steps: "N", or "2N; 2N-1 ..." (one less when the last interval goes to σ = 0); AFS saves
// the first evaluation.
int documented_nfe(const SolverInfo& s, int n, bool to_zero, bool afs) {
  const bool two = s.nfe_rule.rfind("2N", 0) == 0;
  EXPECT_TRUE(two || s.nfe_rule == "N") << s.name << ": rule " << s.nfe_rule;
  return (two ? 2 * n - (to_zero ? 1 : 0) : n) - (afs ? 1 : 0);
}

}  // namespace

// Every solver on 7 steps, to σ_min > 0 and to 0, with and without AFS: the model calls it
// makes (counted around the denoiser), the denoiser's own count and the documented rule agree.
TEST(Denoiser, CountsTheEvaluationsASolverMakes) {
  const Model m = load("gauss.pt", "float32");
  const SigmaRange pos{0.002, 80.0, m.meta().process}, zero{0.0, 80.0, m.meta().process};
  for (const auto& s : solvers())
    for (const SigmaRange& r : {pos, zero})
      for (bool afs : {false, true}) {
        const Grid g = make_grid(schedule("polynomial"), 7, r);
        ModelDenoiser den(m, at::kFloat);
        CountingDenoiser counting(den);
        const FixedStep midpoint;
        integrate(s, counting, make_noise(0, 0, 2, {3, 8, 8}), g, {afs, 0, &midpoint}, false);
        const std::string at = s.name + (r.sigma_min == 0 ? " to 0" : "") + (afs ? " afs" : "");
        EXPECT_GT(counting.calls, 0) << at;
        EXPECT_EQ(den.evaluations(), counting.calls) << at;
        EXPECT_EQ(counting.calls, documented_nfe(s, 7, r.sigma_min == 0, afs)) << at;
        den.reset();
        EXPECT_EQ(den.evaluations(), 0) << at;
      }
}

namespace {

// A copy of models/gauss.pt whose diffode.json has been changed by `edit`.
std::filesystem::path gauss_with_meta(const test::TempDir& dir, const std::function<void(json&)>& edit) {
  torch::jit::ExtraFilesMap extra{{"diffode.json", ""}};
  torch::jit::Module m = torch::jit::load(test::model_path("gauss.pt").string(), c10::kCPU, extra);
  json meta = json::parse(extra["diffode.json"]);
  edit(meta);
  const std::filesystem::path out = dir.path / "edited.pt";
  m.save(out.string(), {{"diffode.json", meta.dump()}});
  return out;
}

std::string load_error_at(const std::filesystem::path& file) {
  ModelOptions opt;
  opt.path = file;
  return test::error_of([&] { Model::load(opt); });
}

}  // namespace

// A key of the process written beside `process` would be ignored and give wrong samples:
// it is refused, suggesting process.<key>; any other unknown key suggests the nearest one.
TEST(Metadata, UnknownArchiveKeysAreRefusedByName) {
  const test::TempDir dir;
  const std::string misplaced = load_error_at(gauss_with_meta(dir, [](json& j) { j["time_scale"] = 1000; }));
  EXPECT_NE(misplaced.find("diffode.json: /time_scale: unknown key 'time_scale'"), std::string::npos) << misplaced;
  EXPECT_NE(misplaced.find("did you mean 'process.time_scale'?"), std::string::npos) << misplaced;
  const std::string typo = load_error_at(gauss_with_meta(dir, [](json& j) { j["sigma_mx"] = 80; }));
  EXPECT_NE(typo.find("/sigma_mx: unknown key 'sigma_mx' (did you mean 'sigma_max'?)"), std::string::npos) << typo;
  // The informational keys shipped archives carry, and the user's own x_ keys, load.
  EXPECT_EQ(load_error_at(gauss_with_meta(dir, [](json& j) { j["x_trained_by"] = "me"; })), "(no error)");
  const std::string wrong_type = load_error_at(gauss_with_meta(dir, [](json& j) { j["gauss_s"] = "half"; }));
  EXPECT_NE(wrong_type.find("/gauss_s: expected a number"), std::string::npos) << wrong_type;
}
