// Noise processes (DESIGN.md §2): x_t = α(t) x0 + σ(t) ε and σ̃ = σ/α for edm, vp, flow and
// discrete tables; σ̃ ↔ t round trips, derivatives, the tensor forms, the network's time,
// the JSON form and its errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "diffode/core/error.hpp"
#include "diffode/core/process.hpp"
#include "test_util.hpp"

using namespace diffode;
using test::cumprod_one_minus;
using test::linear_betas;
using test::ddpm;
using nlohmann::json;

namespace {

std::string error_of(const json& spec) {
  try {
    Process::from_json(spec, "m/process");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// One process of each family, with the time points inside its default range to check at.
struct Case {
  std::string what;
  Process p;
  std::vector<double> times;
};

std::vector<Case> cases() {
  return {
      {"edm", Process::from_json({{"type", "edm"}}, "t"), {0.002, 0.05, 1.0, 7.5, 80.0}},
      {"vp", Process::from_json({{"type", "vp"}}, "t"), {1e-3, 0.01, 0.2, 0.5, 0.9, 1.0}},
      {"vp (0.5, 5)", Process::from_json({{"type", "vp"}, {"beta_min", 0.5}, {"beta_max", 5}}, "t"),
       {1e-3, 0.3, 0.77, 1.0}},
      {"flow", Process::from_json({{"type", "flow"}}, "t"), {1e-3, 0.1, 0.5, 0.9, 0.999}},
      {"discrete", ddpm(), {0.0, 0.25, 3.0, 499.6, 998.2, 999.0}},
  };
}

}  // namespace

// ---------------------------------------------------------------- σ̃ and t

TEST(Process, TimeOfInvertsSigmaTilde) {
  for (const char* type : {"edm", "vp", "flow"}) {
    const Process p = Process::from_json({{"type", type}}, "test");
    for (double t : {0.01, 0.1, 0.37, 0.5, 0.9, 0.999}) {
      const double s = p.sigma_tilde(t);
      EXPECT_NEAR(p.time_of(s), t, 1e-12 * std::max(1.0, t)) << type << " t=" << t;
    }
  }
  const Process flow = Process::from_json({{"type", "flow"}}, "test");
  EXPECT_TRUE(std::isinf(flow.sigma_tilde(1.0)));
  EXPECT_EQ(flow.time_of(std::numeric_limits<double>::infinity()), 1.0);
}

// Both directions for every family: t → σ̃ → t, and σ̃ → t → σ̃ over the range it spans.
TEST(Process, SigmaTildeAndTimeOfRoundTripBothWays) {
  for (const Case& c : cases()) {
    for (double t : c.times) {
      const double s = c.p.sigma_tilde(t);
      ASSERT_TRUE(std::isfinite(s) && s > 0) << c.what << " t=" << t;
      EXPECT_NEAR(c.p.time_of(s), t, 1e-10 * std::max(1.0, t)) << c.what << " t=" << t;
      EXPECT_NEAR(c.p.sigma_tilde(t), c.p.sigma(t) / c.p.alpha(t), 1e-14 * s) << c.what << " t=" << t;
    }
    // (flow's default range is σ̃ 0 to ∞: the sweep spans the times checked above)
    const double lo = c.p.sigma_tilde(c.times.front()), hi = c.p.sigma_tilde(c.times.back());
    ASSERT_LT(lo, hi) << c.what;
    for (int k = 0; k <= 20; ++k) {
      const double s = lo * std::pow(hi / lo, k / 20.0);
      EXPECT_NEAR(c.p.sigma_tilde(c.p.time_of(s)), s, 1e-10 * s) << c.what << " sigma=" << s;
    }
    // σ̃ grows with t: the noisier end is the later time.
    for (size_t i = 1; i < c.times.size(); ++i)
      EXPECT_GT(c.p.sigma_tilde(c.times[i]), c.p.sigma_tilde(c.times[i - 1])) << c.what << " t=" << c.times[i];
  }
}

// The closed forms: edm x = x0 + t ε; flow x = (1 − t) x0 + t ε; both variance-preserving
// processes have α² + σ² = 1.
TEST(Process, ClosedFormsOfEachFamily) {
  const Process edm = Process::from_json({{"type", "edm"}}, "t"), flow = Process::from_json({{"type", "flow"}}, "t");
  for (double t : {0.002, 0.3, 0.75}) {
    EXPECT_EQ(edm.alpha(t), 1.0);
    EXPECT_EQ(edm.sigma(t), t);
    EXPECT_EQ(edm.sigma_tilde(t), t);
    EXPECT_NEAR(flow.alpha(t), 1 - t, 1e-15);
    EXPECT_EQ(flow.sigma(t), t);
    EXPECT_NEAR(flow.sigma_tilde(t), t / (1 - t), 1e-14 * t / (1 - t));
  }
  for (const Process& p : {Process::from_json({{"type", "vp"}}, "t"), ddpm()})
    for (double t : {p.t_min(), 0.5 * (p.t_min() + p.t_max()), p.t_max()})
      EXPECT_NEAR(p.alpha(t) * p.alpha(t) + p.sigma(t) * p.sigma(t), 1.0, 1e-14) << p.name() << " t=" << t;
  // Default time ranges and what they span in σ̃.
  EXPECT_EQ(edm.t_min(), 0.002);
  EXPECT_EQ(edm.t_max(), 80.0);
  EXPECT_EQ(flow.t_min(), 0.0);
  EXPECT_EQ(flow.t_max(), 1.0);
  EXPECT_EQ(edm.sigma_span(), "0.002 to 80");
  EXPECT_EQ(ddpm().sigma_span(), "0.0100005 to 157.407");
}

TEST(Process, VpMatchesTheLinearBetaSchedule) {
  const Process vp = Process::from_json({{"type", "vp"}}, "test");
  const double t = 0.6, log_alpha = -0.25 * t * t * (20 - 0.1) - 0.5 * t * 0.1;
  EXPECT_NEAR(vp.alpha(t), std::exp(log_alpha), 1e-15);
  EXPECT_NEAR(vp.alpha(t) * vp.alpha(t) + vp.sigma(t) * vp.sigma(t), 1.0, 1e-14);
  const double h = 1e-6;  // derivatives against central differences
  EXPECT_NEAR(vp.dalpha(t), (vp.alpha(t + h) - vp.alpha(t - h)) / (2 * h), 1e-8);
  EXPECT_NEAR(vp.dsigma(t), (vp.sigma(t + h) - vp.sigma(t - h)) / (2 * h), 1e-8);
}

// dα/dt and dσ/dt of every family against central differences (inside one table interval
// for the discrete process, whose derivative jumps at whole timesteps).
TEST(Process, DerivativesMatchFiniteDifferences) {
  for (const Case& c : cases())
    for (double t0 : c.times) {
      const bool table = c.p.timesteps() > 0;
      const double h = table ? 1e-4 : 1e-6 * std::max(1.0, t0);
      // t ± h inside the range; on a table inside one interval (t = whole + 0.37)
      const double t = table ? std::min(std::floor(t0), c.p.t_max() - 1) + 0.37
                             : std::clamp(t0, c.p.t_min() + 2 * h, c.p.t_max() - 2 * h);
      const double fa = (c.p.alpha(t + h) - c.p.alpha(t - h)) / (2 * h);
      const double fs = (c.p.sigma(t + h) - c.p.sigma(t - h)) / (2 * h);
      EXPECT_NEAR(c.p.dalpha(t), fa, 1e-5 * std::max(std::abs(fa), 1e-3)) << c.what << " t=" << t;
      EXPECT_NEAR(c.p.dsigma(t), fs, 1e-5 * std::max(std::abs(fs), 1e-3)) << c.what << " t=" << t;
    }
}

// The per-sample (tensor) forms are the scalar forms elementwise, differentiable in σ̃.
TEST(Process, TensorFormsEqualTheScalarOnes) {
  for (const Case& c : cases()) {
    std::vector<double> sigmas;
    for (double t : c.times) sigmas.push_back(c.p.sigma_tilde(t));
    const at::Tensor s = at::tensor(sigmas, at::kDouble).requires_grad_();
    const at::Tensor t = c.p.time_of(s);
    for (int64_t k = 0; k < s.size(0); ++k) {
      const double tk = c.p.time_of(sigmas[static_cast<size_t>(k)]);
      EXPECT_NEAR(t[k].item<double>(), tk, 1e-12 * std::max(1.0, tk)) << c.what;
      EXPECT_NEAR(c.p.alpha(t)[k].item<double>(), c.p.alpha(tk), 1e-13) << c.what;
      EXPECT_NEAR(c.p.sigma(t)[k].item<double>(), c.p.sigma(tk), 1e-12 * std::max(1.0, c.p.sigma(tk))) << c.what;
      EXPECT_NEAR(c.p.dalpha(t)[k].item<double>(), c.p.dalpha(tk), 1e-10 * std::max(1.0, std::abs(c.p.dalpha(tk))))
          << c.what;
      EXPECT_NEAR(c.p.dsigma(t)[k].item<double>(), c.p.dsigma(tk), 1e-10 * std::max(1.0, std::abs(c.p.dsigma(tk))))
          << c.what;
    }
    c.p.sigma(t).sum().backward();
    ASSERT_TRUE(s.grad().defined()) << c.what;
    EXPECT_TRUE(at::isfinite(s.grad()).all().item<bool>()) << c.what;
  }
}

// ---------------------------------------------------------------- discrete tables

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

// ---------------------------------------------------------------- JSON

// to_json holds everything the process is made of: read back, it is the same process.
TEST(ProcessJson, ToJsonReadsBackToTheSameProcess) {
  const std::vector<json> specs = {
      {{"type", "edm"}},
      {{"type", "vp"}, {"beta_min", 0.5}, {"beta_max", 5.0}},
      {{"type", "flow"}, {"shift", 3.0}, {"time_scale", 1000.0}},
      {{"type", "discrete"}, {"betas", {{"schedule", "scaled_linear"}}}, {"quantize", true}},
      {{"type", "discrete"}, {"alphas_cumprod", {0.99, 0.9, 0.5, 0.1}}},
  };
  for (const json& spec : specs) {
    const Process p = Process::from_json(spec, "t");
    const json written = p.to_json();
    const Process q = Process::from_json(written, "again");
    EXPECT_EQ(q.to_json(), written) << spec.dump();
    EXPECT_EQ(q.name(), spec["type"]) << spec.dump();
    EXPECT_EQ(q.shift(), p.shift()) << spec.dump();
    EXPECT_EQ(q.timesteps(), p.timesteps()) << spec.dump();
    for (double u : {0.1, 0.5, 0.9}) {
      const double t = p.t_min() + u * (p.t_max() - p.t_min());
      EXPECT_EQ(q.sigma_tilde(t), p.sigma_tilde(t)) << spec.dump() << " t=" << t;
      EXPECT_EQ(q.network_time(t), p.network_time(t)) << spec.dump() << " t=" << t;
    }
  }
  // The defaults a spec leaves out are written: vp's betas, a beta schedule's start, end, steps.
  EXPECT_EQ(Process::from_json({{"type", "vp"}}, "t").to_json(),
            json({{"type", "vp"}, {"beta_min", 0.1}, {"beta_max", 20.0}}));
  EXPECT_EQ(ddpm().to_json()["betas"], json({{"schedule", "linear"}, {"start", 1e-4}, {"end", 0.02}, {"steps", 1000}}));
  EXPECT_EQ(Process::from_json({{"type", "flow"}, {"shift", 3}}, "t").shift(), 3.0);
  EXPECT_EQ(Process::from_json({{"type", "flow"}}, "t").shift(), 1.0);
  EXPECT_EQ(Process::from_json({{"type", "flow"}}, "t").timesteps(), 0);
}

// Process::vp is the process {"type": "vp"} with those betas.
TEST(ProcessJson, VpFactoryEqualsTheParsedProcess) {
  const Process a = Process::vp(0.5, 12.0);
  const Process b = Process::from_json({{"type", "vp"}, {"beta_min", 0.5}, {"beta_max", 12}}, "t");
  EXPECT_EQ(a.to_json(), b.to_json());
  for (double t : {1e-3, 0.2, 0.8, 1.0}) EXPECT_EQ(a.sigma_tilde(t), b.sigma_tilde(t)) << t;
  EXPECT_EQ(a.time_of(3.0), b.time_of(3.0));
  try {
    Process::vp(2.0, 1.0);
    ADD_FAILURE() << "vp(2, 1) accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("process 'vp': need 0 < beta_min <= beta_max, got beta_min 2"),
              std::string::npos)
        << e.what();
  }
}

TEST(ProcessJson, NamesListTheFamiliesAndBetaSchedules) {
  EXPECT_EQ(process_names(), (std::vector<std::string>{"edm", "vp", "flow", "discrete"}));
  EXPECT_EQ(beta_schedule_names(), (std::vector<std::string>{"linear", "scaled_linear", "cosine"}));
}

TEST(Process, UnknownTypeAndStrayParametersAreErrors) {
  EXPECT_THROW(Process::from_json({{"type", "ve"}}, "x"), InputError);
  EXPECT_THROW(Process::from_json({{"type", "edm"}, {"beta_min", 0.1}}, "x"), InputError);
  EXPECT_THROW(Process::from_json({{"type", "vp"}, {"beta_min", -1}}, "x"), InputError);
}

// Every refusal names the JSON location (`where` and the key) and what is wrong.
TEST(ProcessJson, ErrorsNameTheKeyAndTheProblem) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"type", "ve"}}, "m/process/type: unknown process 've' (did you mean 'vp'?); valid: edm, vp, flow, discrete"},
      {{{"type", "zzzzzz"}}, "m/process/type: unknown process 'zzzzzz'; valid: edm, vp, flow, discrete"},
      {json::array(), "m/process: expected an object like {\"type\": \"flow\"}, got []"},
      {{{"beta_min", 0.1}}, "m/process: expected an object like {\"type\": \"flow\"}"},
      {{{"type", 3}}, "m/process: expected an object like {\"type\": \"flow\"}"},
      {{{"type", "edm"}, {"beta_min", 0.1}}, "m/process/beta_min: process 'edm' takes no 'beta_min'"},
      {{{"type", "vp"}, {"shift", 2}}, "m/process/shift: process 'vp' takes no 'shift'"},
      {{{"type", "flow"}, {"shfit", 2}}, "m/process/shfit: unknown key 'shfit' (did you mean 'shift'?)"},
      {{{"type", "vp"}, {"beta_min", -1}}, "m/process: need 0 < beta_min <= beta_max, got beta_min -1"},
      {{{"type", "vp"}, {"beta_min", 30}}, "need 0 < beta_min <= beta_max, got beta_min 30.000000, beta_max 20.000000"},
      {{{"type", "vp"}, {"beta_max", "20"}}, "m/process/beta_max: expected a number, got \"20\""},
      {{{"type", "flow"}, {"time_scale", 0}}, "m/process/time_scale: must be a number > 0, got 0"},
      {{{"type", "discrete"}, {"betas", {{"schedule", "linear"}, {"steps", 1}}}},
       "m/process/betas/steps: must be an integer in [2, 100000], got 1"},
      {{{"type", "discrete"}, {"betas", {{"schedule", "linear"}, {"begin", 0.1}}}},
       "m/process/betas/begin: unknown key 'begin'"},
      {{{"type", "discrete"}, {"betas", {{"start", 0.1}}}},
       "m/process/betas/schedule: required: one of linear, scaled_linear, cosine"},
      {{{"type", "discrete"}, {"alphas_cumprod", {0.5}}}, "m/process/alphas_cumprod: expected a list of 2 to 100000 numbers"},
      {{{"type", "discrete"}, {"alphas_cumprod", {0.9, "x"}}}, "m/process/alphas_cumprod/1: expected a number, got \"x\""},
  };
  for (const auto& [spec, message] : cases)
    EXPECT_NE(error_of(spec).find(message), std::string::npos) << spec.dump() << "\n  got: " << error_of(spec);
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

// An alpha-bar this close to 0 gives no finite noise level: named at its entry (it was read
// as sigma_max inf and blamed on the model's metadata).
TEST(Process, AnAlphaBarTooCloseToZeroIsNamed) {
  const std::string msg = error_of({{"type", "discrete"}, {"alphas_cumprod", {0.9, 0.5, 1e-310}}});
  EXPECT_NE(msg.find("m/process/alphas_cumprod/2: 1e-310 gives sigma e^356.9"), std::string::npos) << msg;
  EXPECT_NE(msg.find("beyond 1e30"), std::string::npos) << msg;
  EXPECT_EQ(error_of({{"type", "discrete"}, {"alphas_cumprod", {0.9, 0.5, 1e-50}}}), "");  // sigma 1e25: a table
}

// A flow shift past any plan collapsed the grid, and was reported at /solver/nfe.
TEST(Process, AFlowShiftIsBounded) {
  EXPECT_NE(error_of({{"type", "flow"}, {"shift", 5e-324}}).find("m/process/shift: must be in [1e-4, 1e4]"),
            std::string::npos);
  EXPECT_NE(error_of({{"type", "flow"}, {"shift", 1e5}}).find("/shift: must be in [1e-4, 1e4]"), std::string::npos);
  EXPECT_EQ(error_of({{"type", "flow"}, {"shift", 3.0}}), "");
}
