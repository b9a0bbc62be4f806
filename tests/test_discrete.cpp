// Models people already have (DESIGN.md §2), sampled end to end: discrete-time DDPM /
// latent-diffusion models, quantized timesteps, the network's time scale, the flow shift, and
// their bad input. The processes themselves are in test_process.cpp, diffusers' timestep
// spacings in test_schedule.cpp.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "diffode/runs/config.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/integrate.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/noise.hpp"
#include "diffode/core/process.hpp"
#include "diffode/runs/run.hpp"
#include "diffode/runs/sampler.hpp"
#include "diffode/core/schedule.hpp"
#include "test_util.hpp"

using namespace diffode;
using test::cumprod_one_minus;
using test::linear_betas;
using test::ddpm;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

Config config_for(const fs::path& model, json extra) {
  json j = {{"model", {{"path", model.string()}}}, {"sampling", {{"num_samples", 6}, {"batch_size", 6}}}};
  j.merge_patch(extra);
  return parse_config(j, "test.json", test::repo());
}

NpyArray run_samples(const Config& cfg) {
  test::TempDir dir;
  run_sample(cfg, dir.path);
  return read_npy(dir.path / "samples.npy");
}

double max_abs_diff(const NpyArray& a, const NpyArray& b) {
  EXPECT_EQ(a.shape, b.shape);
  double m = 0;
  for (size_t i = 0; i < a.data.size() && i < b.data.size(); ++i)
    m = std::max(m, static_cast<double>(std::abs(a.data[i] - b.data[i])));
  return m;
}

// The Gaussian of the fixtures: N(μ, s² I), μ as make_models.gauss_mean(), s = 0.5.
at::Tensor gauss_mu() {
  const at::Tensor i = at::arange(8, at::kDouble).view({8, 1}).expand({8, 8});
  const at::Tensor j = at::arange(8, at::kDouble).view({1, 8}).expand({8, 8});
  return at::stack({0.6 * (2.0 * j / 7.0 - 1.0), 0.6 * (2.0 * i / 7.0 - 1.0), 0.6 * at::cos(M_PI * (i + j) / 14.0)});
}

}  // namespace

// A closed-form Gaussian model in the discrete convention (DDPM linear table, ε-prediction,
// fractional t through its own log-σ̃ interpolation): heun at 256 steps ends within 1e-3 of
// the exact ODE solution μ + (σ_max ε − μ)·√((s² + σ_min²)/(s² + σ_max²)).
TEST(Discrete, GaussianModelMatchesTheExactOdeSolution) {
  const Config cfg = config_for(test::data_path("ddpm_gauss_eps.pt"),
                                {{"solver", {{"name", "heun"}, {"steps", 256}}}, {"sampling", {{"seed", 40}}}});
  const NpyArray got = run_samples(cfg);
  const Process p = ddpm();
  const double smax = p.sigma_tilde(999.0), smin = p.sigma_tilde(0.0), s = 0.5;
  EXPECT_NEAR(smin, 0.0100005, 1e-6);
  const at::Tensor mu = gauss_mu();
  const at::Tensor eps = make_noise(40, 0, 6, {3, 8, 8}).to(at::kDouble);
  const at::Tensor exact = mu + (eps * smax - mu) * std::sqrt((s * s + smin * smin) / (s * s + smax * smax));
  const at::Tensor x = at::tensor(got.data, at::kFloat).to(at::kDouble).view({6, 3, 8, 8});
  const double rmse = (x - exact).pow(2).mean().sqrt().item<double>();
  EXPECT_LT(rmse, 1e-3);
  // The same model with v-prediction, and with its table given as alphas_cumprod, samples the same.
  const NpyArray v = run_samples(config_for(test::data_path("ddpm_gauss_v.pt"),
                                            {{"solver", {{"name", "heun"}, {"steps", 256}}}, {"sampling", {{"seed", 40}}}}));
  EXPECT_LT(max_abs_diff(v, got), 1e-4);
  const json table = {{"type", "discrete"}, {"alphas_cumprod", cumprod_one_minus(linear_betas(1e-4, 0.02, 1000))}};
  const NpyArray t = run_samples(config_for(test::data_path("ddpm_gauss_eps.pt"),
                                            {{"model", {{"process", table}}},
                                             {"solver", {{"name", "heun"}, {"steps", 256}}}, {"sampling", {{"seed", 40}}}}));
  EXPECT_LT(max_abs_diff(t, got), 1e-6);
}

// quantize: the network is called at whole timesteps only (the fixture raises otherwise), with
// the samples of the unquantized model where the grid holds whole timesteps alone.
TEST(Discrete, QuantizedModelsSeeWholeTimesteps) {
  const json run = {{"solver", {{"name", "dpmpp2m"}, {"steps", 8}}}, {"schedule", {{"name", "trailing"}}}};
  const NpyArray whole = run_samples(config_for(test::data_path("ddpm_gauss_int_t.pt"), run));
  EXPECT_LT(max_abs_diff(whole, run_samples(config_for(test::data_path("ddpm_gauss_eps.pt"), run))), 1e-6);
  const json poly = {{"solver", {{"name", "heun"}, {"steps", 8}}}};
  const NpyArray q = run_samples(config_for(test::data_path("ddpm_gauss_int_t.pt"), poly));
  const NpyArray smooth = run_samples(config_for(test::data_path("ddpm_gauss_eps.pt"), poly));
  const double d = max_abs_diff(q, smooth);
  EXPECT_GT(d, 0.0);  // heun's points fall between timesteps there: rounded, not interpolated
  EXPECT_LT(d, 0.05);
}

// time_scale 1000 gives the samples of the same network taking t in [0, 1].
TEST(Discrete, TimeScaleEqualsAModelThatRescalesTimeItself) {
  const json run = {{"solver", {{"name", "heun"}, {"steps", 6}}}, {"schedule", {{"name", "time_uniform"}}}};
  const NpyArray scaled = run_samples(config_for(test::data_path("flow_gauss_t1000.pt"), run));
  const NpyArray plain = run_samples(config_for(test::model_path("gauss/flow_velocity.pt"), run));
  EXPECT_LT(max_abs_diff(scaled, plain), 1e-6);
  // Without the time scale the network sees t in [0, 1] as if it were [0, 1000]: other samples.
  json off = run;
  off["model"]["process"] = {{"type", "flow"}};
  EXPECT_GT(max_abs_diff(run_samples(config_for(test::data_path("flow_gauss_t1000.pt"), off)), plain), 0.1);
}

// shift s on a flow: every grid point σ̃ becomes s·σ̃ — in flow time t' = s t/(1 + (s − 1) t), the
// formula of SD3's samplers, written here in t — with the ends kept.
TEST(Discrete, FlowShiftMovesEveryGridPoint) {
  const double s = 3.0, lo = 0.002, hi = 80.0;
  const int n = 6;
  auto t_of = [](double sigma) { return sigma / (1 + sigma); };  // flow time of σ̃
  // Time-uniform between the unshifted ends σ/s, each point shifted in t, mapped to σ̃.
  std::vector<double> shifted;
  for (int i = 0; i <= n; ++i) {
    const double t = t_of(hi / s) + (t_of(lo / s) - t_of(hi / s)) * i / n;
    const double ts = s * t / (1 + (s - 1) * t);
    shifted.push_back(ts / (1 - ts));
  }
  EXPECT_NEAR(shifted.front(), hi, 1e-9);
  EXPECT_NEAR(shifted.back(), lo, 1e-12);
  const Process flow = Process::from_json({{"type", "flow"}, {"shift", s}}, "t");
  const Grid g = make_grid(test::schedule("time_uniform"), n, {lo, hi, flow});
  ASSERT_EQ(g.size(), shifted.size());
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], shifted[i], 1e-9 * shifted[i]) << i;
  EXPECT_EQ(g.front(), hi);
  EXPECT_EQ(g.back(), lo);
  // From σ̃ = ∞ (t = 1) the first point stays, and the shift moves the others.
  const Grid from_inf = make_grid(test::schedule("time_uniform"), n, {lo, INFINITY, flow});
  EXPECT_TRUE(std::isinf(from_inf.front()));
  const Grid unshifted = make_grid(test::schedule("time_uniform"), n, {lo / s, INFINITY, Process::from_json({{"type", "flow"}}, "t")});
  EXPECT_NEAR(from_inf[1], s * unshifted[1], 1e-12 * from_inf[1]);
  // End to end: a shifted flow model samples as the unshifted one on the shifted grid.
  const json shift_run = {{"model", {{"process", {{"type", "flow"}, {"shift", s}}}}},
                          {"solver", {{"name", "euler"}, {"steps", n}}},
                          {"schedule", {{"name", "time_uniform"}}}};
  const json custom = {{"solver", {{"name", "euler"}}}, {"schedule", {{"name", "custom"}, {"sigmas", shifted}}}};
  const fs::path model = test::model_path("gauss/flow_velocity.pt");  // σ range 0.002 … 80
  EXPECT_LT(max_abs_diff(run_samples(config_for(model, shift_run)), run_samples(config_for(model, custom))), 1e-6);
  // s = 1 is exactly today's flow.
  const Process one = Process::from_json({{"type", "flow"}, {"shift", 1.0}}, "t");
  const Process plain = Process::from_json({{"type", "flow"}}, "t");
  EXPECT_EQ(make_grid(test::schedule("time_uniform"), n, {lo, INFINITY, one}),
            make_grid(test::schedule("time_uniform"), n, {lo, INFINITY, plain}));
}

// From the command line: the key named, exit 2, nothing written.
TEST(Discrete, BadInputExitsTwoAndWritesNothing) {
  test::TempDir dir;
  const std::string model = test::data_path("ddpm_gauss_eps.pt").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--set 'model.process={\"type\":\"discrete\",\"alphas_cumprod\":[0.5,0.9]}'", "/model/process/alphas_cumprod/1"},
      {"--set 'model.process={\"type\":\"flow\",\"quantize\":true}'", "/model/process/quantize"},
      {"--set solver.space='\"time\"'", "/solver/space: a discrete process has no smooth time"},
      {"--set model.sigma_max=500", "/model/sigma_max: sigma_max 500.000000 is beyond process 'discrete' (its table "
                                    "spans sigma 0.0100005 to 157.407)"},
      {"--set 'model.prediction=\"velocity\"'", "/model/prediction: a discrete process takes eps, v or x0"},
      {"--set model.sigma_min=0", "/schedule: grid point 3 (sigma 0.00960738) is outside process 'discrete'"},
      {"--set model.path='\"" + test::data_path("ddpm_gauss_int_t.pt").string() +
           "\"' --set 'model.process={\"type\":\"discrete\",\"betas\":{\"schedule\":\"linear\"}}'",
       "called between trained timesteps"},
  };
  const fs::path config = dir.path / "c.json";
  std::ofstream(config) << json({{"model", {{"path", model}}}, {"solver", {{"name", "heun"}, {"steps", 4}}},
                                 {"sampling", {{"num_samples", 2}}}})
                               .dump();
  for (const auto& [args, message] : cases) {
    const auto r = test::run_cli("sample -c '" + config.string() + "' -o '" + (dir.path / "out").string() + "' " + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(dir.path / "out")) << args;
  }
}

// A learned last interval would evaluate the model below the table's smallest sigma.
TEST(DiscreteProcess, ALearnedLastIntervalIsRefused) {
  const Config cfg = config_for(test::data_path("ddpm_gauss_eps.pt"),
                                {{"solver", {{"name", "amed"}, {"nfe", 5}, {"last_interval", "learned"}}},
                                 {"schedule", {{"name", "trailing"}}}});
  const Model model = load_run_model(cfg);
  try {
    plan_run(cfg, model);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/solver/last_interval: \"learned\" puts a point in (0, sigma_N-1), but "
                                         "process 'discrete' has no sigma below its table"),
              std::string::npos)
        << e.what();
  }
}
