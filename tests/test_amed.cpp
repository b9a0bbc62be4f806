// AMED: the solvers against their training-free equivalents, per-sample σ and features in
// the denoiser, predictor files and their checks, and the plans that use them (distillation
// itself: test_distill.cpp).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "diffode/core/amed_predictor.hpp"
#include "diffode/core/error.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/model.hpp"
#include "diffode/runs/sampler.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"
#include "test_util.hpp"

using namespace diffode;
using nlohmann::json;
using test::error_of;
using test::model_path;
using test::TempDir;
namespace fs = std::filesystem;

namespace {


const Model& gauss() {
  static const Model m = Model::load({model_path("gauss.pt"), "cpu", "float64"});
  return m;
}

Tensor noise() { return make_noise(3, 0, 4, {3, 8, 8}).to(at::kDouble); }

Tensor run(const std::string& solver, const Grid& g, const SolverOptions& opt, const Model& m = gauss()) {
  ModelDenoiser den(m, at::kDouble);
  return integrate(find_solver(solver), den, noise(), g, opt, false);
}

// The grid with each interval's geometric midpoint inserted (a last interval to 0 stays whole).
Grid refined(const Grid& g) {
  Grid out;
  for (size_t i = 0; i + 1 < g.size(); ++i) {
    out.push_back(g[i]);
    if (g[i + 1] > 0) out.push_back(std::sqrt(g[i] * g[i + 1]));
  }
  out.push_back(g.back());
  return out;
}

double max_diff(const Tensor& a, const Tensor& b) { return (a - b).abs().max().item<double>(); }

const Grid& poly_grid() {
  static const Grid g = make_grid(test::schedule("polynomial"), 6, {0.002, 80.0, gauss().meta().process});
  return g;
}
const Grid to_zero = {80.0, 10.0, 2.0, 0.5, 0.1, 0.0};

}  // namespace

TEST(AmedSolvers, MidpointAmedEqualsDpm2) {
  const FixedStep midpoint;
  for (bool afs : {false, true})
    for (const Grid& g : {poly_grid(), to_zero}) {
      const Tensor a = run("amed", g, {afs, 0, &midpoint}), b = run("dpm2", g, {afs, 0});
      EXPECT_LT(max_diff(a, b), 1e-10) << "afs " << afs << " last sigma " << g.back();
      EXPECT_GT(max_diff(a, run("euler", g, {afs, 0})), 1e-3);  // not trivially equal to anything
    }
}

TEST(AmedSolvers, MidpointPluginsEqualTheirBasesOnTheRefinedGrid) {
  const FixedStep midpoint;
  for (bool afs : {false, true})
    for (const Grid& g : {poly_grid(), to_zero}) {
      for (const char* base : {"euler", "ipndm", "dpmpp2m"}) {
        const Tensor a = run(std::string("amed+") + base, g, {afs, 0, &midpoint});
        const Tensor b = run(base, refined(g), {afs, 0});
        EXPECT_LT(max_diff(a, b), 1e-10) << base << " afs " << afs << " last sigma " << g.back();
      }
      EXPECT_LT(max_diff(run("amed+dpm2", g, {afs, 0, &midpoint}), run("dpm2", g, {afs, 0})), 1e-10);
    }
}

TEST(AmedSolvers, MaxOrderReachesThePluginHistory) {
  const FixedStep midpoint;
  const Tensor a = run("amed+ipndm", poly_grid(), {false, 2, &midpoint});
  EXPECT_LT(max_diff(a, run("ipndm", refined(poly_grid()), {false, 2})), 1e-10);
  EXPECT_GT(max_diff(a, run("amed+ipndm", poly_grid(), {false, 4, &midpoint})), 1e-6);
}

TEST(AmedSolvers, DirectionAndTimeScalesAct) {
  // c scales the step's increment: c = 1 + δ moves the result; a moves where D is called.
  const FixedStep midpoint, longer(0.5, 1.05, 1.0), later(0.5, 1.0, 1.05), early(0.3);
  const Tensor base = run("amed", poly_grid(), {false, 0, &midpoint});
  for (const FixedStep* p : {&longer, &later, &early})
    EXPECT_GT(max_diff(base, run("amed", poly_grid(), {false, 0, p})), 1e-4);
}

TEST(AmedSolvers, NfeRuleHolds) {
  const FixedStep midpoint;
  for (const auto& s : solvers()) {
    if (!s.learned) continue;
    for (const Grid& g : {poly_grid(), to_zero})
      for (bool afs : {false, true}) {
        const int n = static_cast<int>(g.size()) - 1;
        EXPECT_EQ(count_nfe(s, g, {afs, 0, &midpoint}, false), 2 * n - (g.back() == 0 ? 1 : 0) - (afs ? 1 : 0))
            << s.name;
        SolverOptions learned{afs, 0, &midpoint};
        learned.learned_last = true;  // every interval learned: 2 NFE each, into 0 too
        if (g.back() == 0) {
          EXPECT_EQ(count_nfe(s, g, learned, false), 2 * n - (afs ? 1 : 0)) << s.name;
        }
      }
  }
}

// A learned last interval into σ = 0: the mean-value point at s = (1 − r)·σ_{n−1}.
TEST(AmedSolvers, LearnedLastIntervalTakesItsPointLinearly) {
  const FixedStep midpoint, early(0.3, 1.02, 0.98);
  for (bool afs : {false, true}) {
    // the plugins at r = ½ are their bases with σ_{n−1}/2 inserted before 0
    Grid g = refined(to_zero);
    g.insert(g.end() - 1, to_zero[to_zero.size() - 2] / 2);
    for (const char* base : {"euler", "ipndm", "dpmpp2m"}) {
      SolverOptions opt{afs, 0, &midpoint};
      opt.learned_last = true;
      const Tensor a = run(std::string("amed+") + base, to_zero, opt);
      EXPECT_LT(max_diff(a, run(base, g, {afs, 0})), 1e-10) << base << " afs " << afs;
      opt.learned_last = false;
      EXPECT_GT(max_diff(a, run(std::string("amed+") + base, to_zero, opt)), 1e-6) << base;
    }
  }
  // amed: up to σ_{n−1} as before; then x + c·h·d(x_s, a·s) with x_s = x + (s − σ)·d, s = 0.7σ
  const Grid head(to_zero.begin(), to_zero.end() - 1);
  SolverOptions opt{false, 0, &early};
  const Tensor x = run("amed", head, opt);
  opt.learned_last = true;
  const Tensor got = run("amed", to_zero, opt);
  ModelDenoiser den(gauss(), at::kDouble);
  const double sigma = head.back(), s = 0.7 * sigma;
  const Tensor x_s = x + velocity(den, x, sigma) * (s - sigma);
  const Tensor want = x + (x_s - den.denoise(x_s, 0.98 * s)) / s * (1.02 * (0.0 - sigma));
  EXPECT_LT(max_diff(got, want), 1e-10);
}

TEST(AmedSolvers, WithoutAPredictorTheyRefuseToRun) {
  EXPECT_THROW(run("amed", poly_grid(), {}), std::logic_error);
}

// ---------------------------------------------------------------- the denoiser

TEST(AmedDenoiser, PerSampleSigmaEqualsTheSharedOneForEveryParameterization) {
  for (const char* proc : {"edm", "vp", "flow"})
    for (const char* pred : {"x0", "eps", "v", "velocity"}) {
      const std::string name = std::string(proc) + "_" + pred + ".pt";
      const Model m = Model::load({model_path("gauss/" + name), "cpu", "float64"});
      ModelDenoiser den(m, at::kDouble);
      const Tensor x = noise() * 3.0;
      const Tensor shared = den.denoise(x, 3.0);
      const Tensor per = den.denoise(x, at::full({4}, 3.0, at::kDouble));
      EXPECT_LT(max_diff(shared, per), 1e-12) << name;
      // and each row at its own σ as a batch of one
      const Tensor sig = at::tensor({0.5, 2.0, 7.0, 30.0}, at::kDouble);
      const Tensor mixed = den.denoise(x, sig);
      for (int64_t k = 0; k < 4; ++k)
        EXPECT_LT(max_diff(mixed[k], den.denoise(x.slice(0, k, k + 1), sig[k].item<double>())[0]), 1e-12) << name;
    }
}

TEST(AmedDenoiser, PerSampleSigmaIsDifferentiable) {
  // dD/dσ against a central difference, through the process's time map and the model.
  const Model m = Model::load({model_path("gauss/vp_eps.pt"), "cpu", "float64"});
  ModelDenoiser den(m, at::kDouble);
  const Tensor x = noise();
  const Tensor sigma = at::full({4}, 2.0, at::kDouble).requires_grad_(true);
  den.denoise(x, sigma).sum().backward();
  const double h = 1e-5;
  const double fd = ((den.denoise(x, 2.0 + h) - den.denoise(x, 2.0 - h)).sum().item<double>()) / (2 * h);
  EXPECT_NEAR(sigma.grad().sum().item<double>(), fd, 1e-5 * std::max(1.0, std::abs(fd)));
}

TEST(AmedDenoiser, FeaturesComeFromTheSameEvaluation) {
  const Model m = Model::load({model_path("fmnist_flow.pt")});
  ASSERT_TRUE(m.has_features());
  EXPECT_EQ(m.feature_dim(), 49);  // 7x7 bottleneck, averaged over channels
  ModelDenoiser den(m, at::kFloat);
  den.set_condition(at::tensor({int64_t{1}, int64_t{7}}), 1.0);
  const Tensor x = make_noise(0, 0, 2, {1, 28, 28});
  const Denoised d = den.denoise_with_feature(x, 1.5);
  EXPECT_EQ(d.feature.sizes(), (std::vector<int64_t>{2, 49}));
  EXPECT_LT(max_diff(d.x0, den.denoise(x, 1.5)), 1e-5);
  EXPECT_EQ(den.evaluations(), 2);
  EXPECT_GT(d.feature.std().item<double>(), 0);

  // a model without features gives zeros of width 1
  ModelDenoiser plain(gauss(), at::kDouble);
  const Denoised z = plain.denoise_with_feature(noise(), 1.0);
  EXPECT_EQ(z.feature.sizes(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(z.feature.abs().sum().item<double>(), 0.0);
}

// ---------------------------------------------------------------- predictor files

TEST(AmedPredictorFile, NewPredictorStartsAtTheMidpointAndRoundTrips) {
  TempDir tmp;
  AmedPredictor p = AmedPredictor::create(49, 0.05, 0.1, 7);
  const Tensor f = at::randn({3, 49});
  const MeanValueStep m = p.predict(f, 5.0, 2.0);
  EXPECT_LT((m.r - 0.5).abs().max().item<double>(), 1e-7);
  EXPECT_LT((m.c - 1).abs().max().item<double>(), 1e-7);
  EXPECT_LT((m.a - 1).abs().max().item<double>(), 1e-7);

  // move the heads, save, load: the same predictions and metadata
  {
    at::NoGradGuard g;
    for (auto& t : p.parameters()) t.add_(at::randn(t.sizes()) * 0.3);
  }
  p.set_metadata({{"kind", "amed_predictor"}, {"note", "x"}});
  write_file_atomic(tmp.path / "p.pt", p.archive_bytes());
  const AmedPredictor q = AmedPredictor::load(tmp.path / "p.pt");
  const MeanValueStep a = p.predict(f, 5.0, 2.0), b = q.predict(f, 5.0, 2.0);
  EXPECT_LT(max_diff(a.r, b.r) + max_diff(a.c, b.c) + max_diff(a.a, b.a), 1e-7);
  EXPECT_EQ(q.metadata()["note"], "x");
  EXPECT_EQ(q.feature_dim(), 49);
  // the ranges hold whatever the weights
  EXPECT_TRUE((a.r > 0).all().item<bool>() && (a.r < 1).all().item<bool>());
  EXPECT_LE((a.c - 1).abs().max().item<double>(), 0.05 + 1e-7);
  EXPECT_LE((a.a - 1).abs().max().item<double>(), 0.1 + 1e-7);
  EXPECT_GT(max_diff(a.r, at::full_like(a.r, 0.5)), 1e-4);
}

// A predictor whose output turns NaN is named as the fault, not the model it steers.
TEST(AmedPredictorFile, ANanPredictionIsThePredictorsFault) {
  TempDir tmp;
  AmedPredictor p = AmedPredictor::create(49, 0.05, 0.1, 7);
  {
    at::NoGradGuard g;
    for (auto& t : p.parameters()) t.fill_(std::nan(""));
  }
  p.set_metadata({{"kind", "amed_predictor"}});
  write_file_atomic(tmp.path / "nan.pt", p.archive_bytes());
  const AmedPredictor q = AmedPredictor::load(tmp.path / "nan.pt");
  const std::string msg = error_of([&] { q.predict(at::randn({3, 49}), 5.0, 2.0); });
  EXPECT_NE(msg.find("predictor " + (tmp.path / "nan.pt").string() + ": returned NaN or Inf for (r, c, a)"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("the predictor, not the model, is at fault"), std::string::npos) << msg;
}

TEST(AmedPredictorFile, MissingOrForeignFilesAreRefused) {
  TempDir tmp;
  EXPECT_NE(error_of([&] { AmedPredictor::load(tmp.path / "none.pt"); }).find("none.pt: file does not exist"),
            std::string::npos);
  std::ofstream(tmp.path / "junk.pt") << "not a zip";
  EXPECT_NE(error_of([&] { AmedPredictor::load(tmp.path / "junk.pt"); }).find("not a loadable TorchScript archive"),
            std::string::npos);
  EXPECT_NE(error_of([&] { AmedPredictor::load(model_path("gauss.pt")); }).find("not a diffode AMED predictor"),
            std::string::npos);
}

TEST(AmedPredictorFile, UseWithAnotherModelStepsScheduleOrSolverIsRefused) {
  const Grid g = poly_grid();
  const PredictorUse made{"abc", "amed", 6, false, g, 1};
  AmedPredictor p = AmedPredictor::create(1, 0.05, 0.05, 0);
  p.set_metadata(predictor_identity(made, test::schedule("polynomial")));
  EXPECT_EQ(error_of([&] { check_predictor(p, "p.pt", made); }), "(no error)");

  PredictorUse other = made;
  other.model_sha256 = "def";
  EXPECT_NE(error_of([&] { check_predictor(p, "p.pt", other); }).find("model sha256 \"abc\" (this run: \"def\")"),
            std::string::npos);
  other = made;
  other.solver = "amed+ipndm";
  EXPECT_NE(error_of([&] { check_predictor(p, "p.pt", other); }).find("solver \"amed\" (this run: \"amed+ipndm\")"),
            std::string::npos);
  other = made;
  other.steps = 5;
  other.grid = make_grid(test::schedule("polynomial"), 5, {0.002, 80.0, gauss().meta().process});
  EXPECT_NE(error_of([&] { check_predictor(p, "p.pt", other); }).find("steps 6 (this run: 5)"), std::string::npos);
  other = made;
  other.grid = make_grid(test::schedule("logsnr"), 6, {0.002, 80.0, gauss().meta().process});
  const std::string msg = error_of([&] { check_predictor(p, "p.pt", other); });
  EXPECT_NE(msg.find("sigma grid"), std::string::npos) << msg;
  EXPECT_NE(msg.find("polynomial"), std::string::npos) << msg;
  other = made;
  other.afs = true;
  EXPECT_NE(error_of([&] { check_predictor(p, "p.pt", other); }).find("afs false (this run: true)"), std::string::npos);
  other = made;
  other.last_interval = "learned";
  EXPECT_NE(error_of([&] { check_predictor(p, "p.pt", other); }).find("last interval \"base\" (this run: \"learned\")"),
            std::string::npos);
  other = made;
  other.feature_dim = 49;
  EXPECT_NE(error_of([&] { check_predictor(p, "p.pt", other); }).find("feature width 1"), std::string::npos);
}

// ---------------------------------------------------------------- plans (distillation: test_distill.cpp)

TEST(AmedConfig, ALearnedLastIntervalNeedsAGridToZeroAndAnAmedSolver) {
  json j = {{"model", {{"path", model_path("gmm2d.pt").string()}}},
            {"solver", {{"name", "amed"}, {"nfe", 5}, {"last_interval", "learned"}}},
            {"schedule", {{"name", "polynomial"}}}};
  const Model model = Model::load({model_path("gmm2d.pt")});
  const Config cfg = parse_config(j, "c.json", ".");
  EXPECT_EQ(error_of([&] { plan_run(cfg, model); }).substr(0, 200),
            std::string("c.json: /solver/last_interval: \"learned\" learns the interval into sigma 0, but this grid "
                        "ends at sigma 0.002; use a grid to 0 (model.sigma_min 0), or leave last_interval unset")
                .substr(0, 200));
  j["solver"]["name"] = "heun";
  EXPECT_NE(error_of([&] { parse_config(j, "c.json", "."); })
                .find("/solver/last_interval: solver 'heun' learns no step (only the AMED solvers do)"),
            std::string::npos);
  j["solver"] = {{"name", "amed"}, {"last_interval", "late"}};
  EXPECT_NE(error_of([&] { parse_config(j, "c.json", "."); }).find("expected \"base\" or \"learned\""),
            std::string::npos);
}

TEST(AmedConfig, ScheduleSigmaMinEndsTheGridWithinTheModelsRange) {
  json j = {{"model", {{"path", model_path("gmm2d.pt").string()}, {"sigma_min", 0}}},
            {"solver", {{"name", "dpmpp2m"}, {"steps", 4}}},
            {"schedule", {{"name", "vp_time"}, {"sigma_min", 0.002}}}};
  const Model model = Model::load({model_path("gmm2d.pt"), "cpu", "float32", {{"sigma_min", 0}}});
  const StepPlan plan = plan_run(parse_config(j, "c.json", "."), model);
  EXPECT_EQ(plan.grid.size(), 5u);
  EXPECT_NEAR(plan.grid.back(), 0.002, 1e-12);
  EXPECT_NEAR(plan.grid.front(), 80.0, 1e-9);
  j["schedule"]["sigma_min"] = 90;
  EXPECT_NE(error_of([&] { plan_run(parse_config(j, "c.json", "."), model); })
                .find("/schedule/sigma_min: 90 is outside the model's sigma range [0, 80)"),
            std::string::npos);
  j["schedule"] = {{"name", "custom"}, {"sigmas", {80, 1, 0}}, {"sigma_min", 0.1}};
  EXPECT_NE(error_of([&] { parse_config(j, "c.json", "."); }).find("sigma_min"), std::string::npos);
}
