// Models people already have (DESIGN.md §2): discrete-time DDPM / latent-diffusion tables
// with log-σ̃ interpolation, quantized timesteps, the network's time scale, the flow shift and
// diffusers' timestep spacings.
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
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ᾱ of a beta list, written here: the cumulative product of 1 − β.
std::vector<double> cumprod_one_minus(const std::vector<double>& betas) {
  std::vector<double> out;
  double p = 1;
  for (double b : betas) out.push_back(p *= 1 - b);
  return out;
}

std::vector<double> linear_betas(double start, double end, int n) {
  std::vector<double> b;
  for (int i = 0; i < n; ++i) b.push_back(start + (end - start) * i / (n - 1));
  return b;
}

Process ddpm() {
  return Process::from_json({{"type", "discrete"}, {"betas", {{"schedule", "linear"}}}}, "test");
}

std::string error_of(const json& spec) {
  try {
    Process::from_json(spec, "m/process");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

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

TEST(Discrete, LinearTableIsDdpms) {
  const Process p = ddpm();
  const std::vector<double> abar = cumprod_one_minus(linear_betas(1e-4, 0.02, 1000));
  EXPECT_EQ(p.timesteps(), 1000);
  EXPECT_EQ(p.t_min(), 0.0);
  EXPECT_EQ(p.t_max(), 999.0);
  // As published: ᾱ_999 ≈ 4.0e-5 for DDPM's linear betas.
  EXPECT_NEAR(std::pow(p.alpha(999.0), 2), 4.0358e-5, 1e-8);
  for (int i : {0, 1, 17, 500, 998, 999}) {
    EXPECT_NEAR(std::pow(p.alpha(i), 2) / abar[static_cast<size_t>(i)], 1.0, 1e-12) << i;
    EXPECT_NEAR(p.sigma_tilde(i), std::sqrt((1 - abar[static_cast<size_t>(i)]) / abar[static_cast<size_t>(i)]),
                1e-12 * p.sigma_tilde(i)) << i;
    EXPECT_NEAR(p.alpha(i) * p.alpha(i) + p.sigma(i) * p.sigma(i), 1.0, 1e-14);
  }
}

TEST(Discrete, NamedBetaSchedulesMatchTheirFormulas) {
  // Stable Diffusion 1.x–2.x: √β linear from √0.00085 to √0.012.
  std::vector<double> sd;
  for (double r : linear_betas(std::sqrt(0.00085), std::sqrt(0.012), 1000)) sd.push_back(r * r);
  const std::vector<double> sd_abar = cumprod_one_minus(sd);
  const Process p = Process::from_json({{"type", "discrete"}, {"betas", {{"schedule", "scaled_linear"}}}}, "t");
  EXPECT_NEAR(std::pow(p.alpha(999.0), 2) / sd_abar[999], 1.0, 1e-12);
  EXPECT_NEAR(sd_abar[999], 0.0047, 1e-4);
  // Improved DDPM's cosine: ᾱ(t) = f(t)/f(0), f = cos²((t/T + 0.008)/1.008 · π/2), β ≤ 0.999.
  auto f = [](double u) { return std::pow(std::cos((u + 0.008) / 1.008 * M_PI / 2), 2); };
  const std::vector<double> cos_abar = alphas_cumprod("cosine", 0, 0, 1000);
  for (size_t i : {0u, 100u, 500u, 900u})
    EXPECT_NEAR(cos_abar[i], f((i + 1) / 1000.0) / f(0), 1e-9 * cos_abar[i]) << i;
  EXPECT_NEAR(cos_abar[999] / cos_abar[998], 1 - 0.999, 1e-12);  // the cap
  // A table given as is gives the same process as the betas that made it.
  const Process t = Process::from_json({{"type", "discrete"}, {"alphas_cumprod", sd_abar}}, "t");
  for (double x : {0.0, 3.25, 500.5, 999.0}) EXPECT_NEAR(t.sigma_tilde(x), p.sigma_tilde(x), 1e-12 * p.sigma_tilde(x));
}

TEST(Discrete, TimeIsLogLinearBetweenTimestepsWithExactInverseAndDerivatives) {
  const Process p = ddpm();
  for (int i : {0, 10, 400, 998}) {
    // Half-way in t is the geometric mean in σ̃.
    EXPECT_NEAR(p.sigma_tilde(i + 0.5), std::sqrt(p.sigma_tilde(i) * p.sigma_tilde(i + 1)), 1e-12 * p.sigma_tilde(i));
    EXPECT_NEAR(p.time_of(p.sigma_tilde(i)), i, 1e-9);
    for (double w : {0.3, 0.77}) {
      const double t = i + w, h = 1e-3;  // central differences within one interval
      EXPECT_NEAR(p.time_of(p.sigma_tilde(t)), t, 1e-9) << t;
      EXPECT_NEAR(p.dalpha(t), (p.alpha(t + h) - p.alpha(t - h)) / (2 * h), 1e-6 * std::abs(p.dalpha(t)) + 1e-13) << t;
      EXPECT_NEAR(p.dsigma(t), (p.sigma(t + h) - p.sigma(t - h)) / (2 * h), 1e-6 * std::abs(p.dsigma(t)) + 1e-13) << t;
    }
  }
  // Outside the table there is no time: the σ range is the table's ends.
  EXPECT_TRUE(std::isnan(p.time_of(200.0)));
  EXPECT_TRUE(std::isnan(p.time_of(0.005)));
  EXPECT_NEAR(p.time_of(p.sigma_tilde(999.0)), 999.0, 1e-9);
  // The per-sample (tensor) forms are the same numbers, and differentiable in σ̃.
  const at::Tensor s = at::tensor({p.sigma_tilde(0.0), 0.5, 3.0, 80.0, 157.0}, at::kDouble).requires_grad_();
  const at::Tensor t = p.time_of(s);
  for (int64_t k = 0; k < s.size(0); ++k) {
    const double tk = t[k].item<double>();
    EXPECT_NEAR(tk, p.time_of(s[k].item<double>()), 1e-12 * std::max(1.0, tk));
    EXPECT_NEAR(p.alpha(t)[k].item<double>(), p.alpha(tk), 1e-14);
    EXPECT_NEAR(p.sigma(t)[k].item<double>(), p.sigma(tk), 1e-14);
    EXPECT_NEAR(p.dalpha(t)[k].item<double>(), p.dalpha(tk), 1e-12 * std::abs(p.dalpha(tk)));
    EXPECT_NEAR(p.dsigma(t)[k].item<double>(), p.dsigma(tk), 1e-12 * std::abs(p.dsigma(tk)));
  }
  p.alpha(t).sum().backward();
  EXPECT_TRUE(at::isfinite(s.grad()).all().item<bool>());
}

TEST(Discrete, NetworkTimeIsQuantizedAndScaled) {
  const Process q = Process::from_json(
      {{"type", "discrete"}, {"betas", {{"schedule", "linear"}}}, {"quantize", true}}, "t");
  EXPECT_EQ(q.network_time(10.4), 10.0);
  EXPECT_EQ(q.network_time(10.5), 11.0);
  EXPECT_EQ(q.network_time(998.9), 999.0);
  const at::Tensor t = at::tensor({10.4, 10.5, 2.5, 998.9}, at::kDouble);
  EXPECT_TRUE(at::equal(q.network_time(t), at::tensor({10.0, 11.0, 3.0, 999.0}, at::kDouble)));
  EXPECT_EQ(ddpm().network_time(10.4), 10.4);
  const Process f = Process::from_json({{"type", "flow"}, {"time_scale", 1000}}, "t");
  EXPECT_EQ(f.network_time(0.25), 250.0);
  EXPECT_EQ(f.sigma_tilde(0.25), 0.25 / 0.75);  // the process itself is unchanged
  EXPECT_EQ(f.to_json(), json({{"type", "flow"}, {"time_scale", 1000.0}}));
  EXPECT_EQ(Process::from_json({{"type", "flow"}}, "t").to_json(), json({{"type", "flow"}}));
}

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

// diffusers' timestep_spacing for T = 1000 (numpy rounds half to even), then σ = 0.
TEST(Discrete, TimestepSpacingsPickDiffusersTimesteps) {
  const Process p = ddpm();
  const SigmaRange range{p.sigma_tilde(0.0), p.sigma_tilde(999.0), p};
  auto expect = [&](const char* name, int steps, std::vector<int> timesteps, int offset = 0) {
    ScheduleSpec spec = test::schedule(name);
    spec.offset = offset;
    const Grid g = make_grid(spec, steps, range);
    ASSERT_EQ(g.size(), timesteps.size() + 1) << name;
    for (size_t k = 0; k < timesteps.size(); ++k)
      EXPECT_NEAR(g[k], p.sigma_tilde(timesteps[k]), 1e-12 * g[k]) << name << " " << k;
    EXPECT_EQ(g.back(), 0.0);
  };
  expect("linspace", 7, {999, 832, 666, 500, 333, 166, 0});
  expect("trailing", 7, {999, 856, 713, 570, 428, 285, 142});
  expect("leading", 7, {852, 710, 568, 426, 284, 142, 0});
  expect("leading", 10, {901, 801, 701, 601, 501, 401, 301, 201, 101, 1}, 1);
  expect("trailing", 4, {999, 749, 499, 249});
  // Ties at .5, rounded as numpy's own arithmetic gives them (numpy 1.x output, copied).
  expect("linspace", 27, {999, 961, 922, 884, 845, 807, 768, 730, 692, 653, 615, 576, 538, 499,
                          461, 423, 384, 346, 307, 269, 231, 192, 154, 115, 77, 38, 0});
  expect("trailing", 48, {999, 978, 957, 936, 916, 895, 874, 853, 832, 811, 791, 770, 749, 728, 707, 686,
                          666, 645, 624, 603, 582, 561, 541, 520, 499, 478, 457, 436, 416, 395, 374, 353,
                          332, 311, 291, 270, 249, 228, 207, 186, 166, 145, 124, 103, 82,  61,  41,  20});
  // numpy's arange gives 62 values at N = 61, the last -1 (diffusers' bug): the first 61 are taken.
  expect("trailing", 61, {999, 983, 966, 950, 933, 917, 901, 884, 868, 851, 835, 819, 802, 786, 769, 753,
                          737, 720, 704, 688, 671, 655, 638, 622, 606, 589, 573, 556, 540, 524, 507, 491,
                          474, 458, 442, 425, 409, 392, 376, 360, 343, 327, 310, 294, 278, 261, 245, 229,
                          212, 196, 179, 163, 147, 130, 114, 97,  81,  65,  48,  32,  15});
  // A trained timestep's sigma maps back to that whole timestep exactly (networks that cast
  // t to an integer must not get the one below).
  for (int i : {1, 17, 499, 998, 999}) EXPECT_EQ(p.time_of(p.sigma_tilde(i)), static_cast<double>(i)) << i;
  try {
    ScheduleSpec spec = test::schedule("leading");
    spec.offset = 200;
    make_grid(spec, 5, range);
    ADD_FAILURE() << "offset 200 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("picks timestep 1000, outside the trained 0 .. 999"), std::string::npos)
        << e.what();
  }
  const Process flow = Process::from_json({{"type", "flow"}}, "t");
  EXPECT_THROW(make_grid(test::schedule("trailing"), 5, {0.0, 80.0, flow}), InputError);
  // Teacher points (distillation) inside the last interval into 0 stay on the table.
  const Grid fine = refine_grid(make_grid(test::schedule("trailing"), 5, range), 3, test::schedule("trailing"), range);
  ASSERT_EQ(fine.size(), 21u);
  for (size_t i = 0; i + 1 < fine.size(); ++i) {
    EXPECT_GE(fine[i], p.sigma_tilde(0.0)) << i;
    EXPECT_FALSE(std::isnan(p.time_of(fine[i]))) << i;
  }
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

TEST(Discrete, BadProcessesAreNamed) {
  const json linear = {{"schedule", "linear"}};
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"type", "discrete"}, {"alphas_cumprod", {0.9, 0.95, 0.5}}},
       "m/process/alphas_cumprod/1: the table must strictly decrease"},
      {{{"type", "discrete"}, {"alphas_cumprod", {0.9, 0.5, 0.0}}}, "m/process/alphas_cumprod/2: must be in (0, 1), got 0"},
      {{{"type", "discrete"}, {"alphas_cumprod", {1.5, 0.5}}}, "m/process/alphas_cumprod/0: must be in (0, 1), got 1.5"},
      {{{"type", "discrete"}, {"alphas_cumprod", {0.9, 0.5}}, {"betas", linear}},
       "needs exactly one of 'alphas_cumprod' (the table of ᾱ per trained timestep) and 'betas'"},
      {{{"type", "discrete"}}, "got neither"},
      {{{"type", "discrete"}, {"betas", {{"schedule", "squaredcos_cap_v2"}}}},
       "m/process/betas/schedule: unknown beta schedule 'squaredcos_cap_v2'"},
      {{{"type", "discrete"}, {"betas", {{"schedule", "linear"}, {"start", 0.02}, {"end", 0.01}}}},
       "m/process/betas: need 0 < start <= end < 1, got start 0.02, end 0.01"},
      {{{"type", "discrete"}, {"betas", {{"schedule", "cosine"}, {"end", 0.02}}}}, "m/process/betas/end: beta schedule 'cosine' takes no end"},
      {{{"type", "flow"}, {"time_scale", 0}}, "m/process/time_scale: must be a number > 0, got 0"},
      {{{"type", "vp"}, {"time_scale", -1000}}, "m/process/time_scale: must be a number > 0, got -1000"},
      {{{"type", "flow"}, {"shift", -3}}, "m/process/shift: must be a number > 0, got -3"},
      {{{"type", "edm"}, {"shift", 3}}, "m/process/shift: process 'edm' takes no 'shift'"},
      {{{"type", "flow"}, {"quantize", true}}, "m/process/quantize: process 'flow' takes no 'quantize' (only a discrete"},
      {{{"type", "discrete"}, {"betas", linear}, {"quantize", 1}}, "m/process/quantize: expected a boolean"},
      {{{"type", "discrete"}, {"betas", linear}, {"beta_min", 0.1}}, "m/process/beta_min: process 'discrete' takes no"},
  };
  for (const auto& [spec, message] : cases)
    EXPECT_NE(error_of(spec).find(message), std::string::npos) << spec.dump() << "\n  got: " << error_of(spec);
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
