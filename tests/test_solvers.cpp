// Solvers: convergence order against the exact ODE solution of Gaussian data (gauss.pt),
// Adams–Bashforth weights, NFE counting and NFE targets; every solver on the vp_time grid.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "diffode/core/error.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/model.hpp"
#include "diffode/runs/sampler.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"
#include "solvers/solvers.hpp"
#include "test_util.hpp"

using namespace diffode;

namespace {

using test::schedule;

// gauss.pt run in float64, with its μ and s from the metadata.
struct GaussFixture {
  Model model = Model::load({test::model_path("gauss.pt"), "cpu", "float64"});
  Tensor mu = at::tensor(model.archive_metadata()["gauss_mu"].get<std::vector<double>>(), at::kDouble).view({3, 8, 8});
  double s = model.archive_metadata()["gauss_s"].get<double>();
  SigmaRange range{0.002, 80.0, model.meta().process};
  Tensor eps = make_noise(0, 0, 8, {3, 8, 8}).to(at::kDouble);

  // x(σ) − μ = (x(σ_T) − μ) √((s² + σ²)/(s² + σ_T²)), from x̃(σ_T) = σ_T ε.
  Tensor exact(const Grid& g) const {
    const double f = std::sqrt((s * s + g.back() * g.back()) / (s * s + g.front() * g.front()));
    return mu + (g.front() * eps - mu) * f;
  }
  double error(const std::string& solver, int steps, const std::string& schedule_name = "polynomial",
               int max_order = 0) {
    const Grid g = make_grid(schedule(schedule_name), steps, range);
    ModelDenoiser den(model, at::kDouble);
    const FixedStep midpoint;  // the AMED solvers with r = ½, c = a = 1 (their untrained state)
    const Tensor x = integrate(find_solver(solver), den, eps, g, {false, max_order, &midpoint}, false);
    return (x - exact(g)).pow(2).mean().sqrt().item<double>();
  }
};

GaussFixture& gauss() {
  static GaussFixture f;
  return f;
}

// Observed order from the errors at N and 2N steps.
double observed_order(const std::string& solver, int n, const std::string& schedule = "polynomial",
                      int max_order = 0) {
  return std::log2(gauss().error(solver, n, schedule, max_order) / gauss().error(solver, 2 * n, schedule, max_order));
}

}  // namespace

TEST(Convergence, EulerIsFirstOrder) {
  const double p = observed_order("euler", 32);
  EXPECT_GT(p, 0.85);
  EXPECT_LT(p, 1.3);
}

TEST(Convergence, SecondOrderSolvers) {
  for (const char* name : {"heun", "dpm2", "dpmpp2m"}) {
    const double p = observed_order(name, 32);
    EXPECT_GT(p, 1.8) << name;
    EXPECT_LT(p, 2.6) << name;
  }
}

TEST(Convergence, DpmSolverPlusPlus3mIsThirdOrder) {
  const double p = observed_order("dpmpp3m", 64);
  EXPECT_GT(p, 2.7);
  EXPECT_LT(p, 3.5);
}

// UniPC's corrector raises the order by one (Zhao et al. 2023, §3.1: UniC-p after UniP-p has
// order p + 1): measured with max_order 3 / 2 / 1 on the polynomial grid, N = 32 → 64: 4.00 /
// 3.19 / 2.13 with B(h) = h, 4.00 / 3.04 / 1.95 with B(h) = e^h − 1; N = 128 → 256: 4.01 / 3.04 /
// 2.04 and 4.01 / 3.01 / 2.00 (logsnr grid: 3.86 / 3.03 / 2.04 there, 3.99 for max_order 3 at
// N = 512 → 1024).
TEST(Convergence, UniPcIsOneOrderAboveItsMaxOrder) {
  for (const char* name : {"unipc_bh1", "unipc_bh2"}) {
    for (int max_order : {1, 2, 3}) {
      const double p = observed_order(name, 32, "polynomial", max_order);
      EXPECT_GT(p, max_order + 0.8) << name << " max_order " << max_order;
      EXPECT_LT(p, max_order + 1.5) << name << " max_order " << max_order;
    }
    EXPECT_NEAR(observed_order(name, 32), observed_order(name, 32, "polynomial", 3), 1e-12) << name;  // default 3
  }
}

// iPNDM_v's variable-step weights keep Adams–Bashforth's order on the polynomial grid.
TEST(Convergence, IpndmVAtLeastThirdOrderOnPolynomialGrid) { EXPECT_GT(observed_order("ipndm_v", 32), 3.0); }

// iPNDM's fixed weights assume equal steps: on the polynomial grid the step-size variation
// leaves a second-order error term (measured order 2.0-2.2 for N = 16..256), the reason
// ipndm_v exists. On equal steps both are the same method (Solvers.IpndmVEqualsIpndm...).
TEST(Convergence, IpndmIsAtLeastSecondOrderOnPolynomialGrid) { EXPECT_GT(observed_order("ipndm", 32), 1.8); }

TEST(Convergence, ErrorsShrinkOnEverySchedule) {
  for (const char* schedule : {"polynomial", "logsnr"})
    for (const auto& s : solvers()) EXPECT_GT(observed_order(s.name, 16, schedule), 0.9) << s.name << " " << schedule;
}

TEST(AdamsBashforth, UniformStepsGiveTheFixedCoefficients) {
  const std::vector<std::vector<double>> fixed = {
      {1.0}, {1.5, -0.5}, {23.0 / 12, -16.0 / 12, 5.0 / 12}, {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24}};
  for (size_t order = 1; order <= 4; ++order) {
    std::vector<double> past;
    for (size_t j = 0; j < order; ++j) past.push_back(5.0 + 0.5 * static_cast<double>(j));  // σ_i, σ_{i-1}, ...
    const auto w = solver_impl::adams_bashforth_weights(past, 4.5);
    ASSERT_EQ(w.size(), order);
    for (size_t j = 0; j < order; ++j) EXPECT_NEAR(w[j], fixed[order - 1][j], 1e-12) << order << " " << j;
  }
}

TEST(AdamsBashforth, VariableWeightsIntegrateCubicsExactly) {
  const std::vector<double> past = {2.0, 2.7, 3.1, 4.6};  // uneven history
  const double next = 1.2, h = next - past[0];
  const auto w = solver_impl::adams_bashforth_weights(past, next);
  auto f = [](double t) { return 1 - 2 * t + 0.5 * t * t - 0.3 * t * t * t; };
  auto F = [](double t) { return t - t * t + t * t * t / 6 - 0.075 * t * t * t * t; };
  double quad = 0;
  for (size_t j = 0; j < past.size(); ++j) quad += h * w[j] * f(past[j]);
  EXPECT_NEAR(quad, F(next) - F(past[0]), 1e-12);
}

// UniPC's step is exact when D is a polynomial of degree K in λ (K = the number of differences,
// ≥ 2): ∫_0^h e^{−(h−u)} q(u) du = (1 − e^{−h}) q(0) + Σ_k w_k (q(r_k h) − q(0)) / r_k, the left
// side by Simpson's rule. UniP-3 has r = two earlier points; UniC-3 adds the new one, r = 1.
TEST(UniPc, WeightsIntegratePolynomialsOfTheirDegreeExactly) {
  const double h = 0.7;
  const std::vector<std::vector<double>> nodes = {{-0.8, -1.9}, {-0.8, 1.0}, {-0.8, -1.9, 1.0}};
  for (const auto& r : nodes)
    for (auto b : {solver_impl::UniPcB::bh1, solver_impl::UniPcB::bh2}) {
      const auto w = solver_impl::unipc_weights(r, h, b);
      for (size_t degree = 0; degree <= r.size(); ++degree) {
        auto q = [degree](double u) { return std::pow(u - 0.3, static_cast<double>(degree)); };
        const int m = 2000;
        double exact = 0;
        for (int j = 0; j <= m; ++j) {
          const double u = h * j / m, f = std::exp(-(h - u)) * q(u);
          exact += f * (j == 0 || j == m ? 1 : (j % 2 ? 4 : 2)) * h / (3 * m);
        }
        double step = -std::expm1(-h) * q(0);
        for (size_t k = 0; k < r.size(); ++k) step += w[k] * (q(r[k] * h) - q(0)) / r[k];
        EXPECT_NEAR(step, exact, 1e-12) << r.size() << " nodes, degree " << degree;
      }
    }
}

// With one difference a_1 = ½ and w = B(h)/2: UniP-2 with B(h) = e^h − 1 is DPM-Solver++(2M).
TEST(UniPc, UniP2WithExpm1IsDpmSolverPlusPlus2m) {
  const double t_prev = 3.0, t_cur = 1.7, t_next = 0.9;
  const double h = std::log(t_cur / t_next), h_prev = std::log(t_prev / t_cur);
  const Tensor x = at::randn({4}, at::kDouble), m0 = at::randn({4}, at::kDouble), m1 = at::randn({4}, at::kDouble);
  const double r = -h_prev / h;
  const double w = solver_impl::unipc_weights({r}, h, solver_impl::UniPcB::bh2)[0];
  const Tensor unip = solver_impl::dpmpp_step(x, m0, Tensor(), t_cur, t_next, 0.0, 1) + (m1 - m0) * (w / r);
  const Tensor dpmpp = solver_impl::dpmpp_step(x, m0, m1, t_cur, t_next, h_prev, 2);
  EXPECT_LT((unip - dpmpp).abs().max().item<double>(), 1e-14);
  EXPECT_NEAR(solver_impl::unipc_weights({1.0}, h, solver_impl::UniPcB::bh1)[0], h / 2, 1e-15);  // UniC-1, B(h) = h
}

namespace {
Grid poly_grid(int n, double smin = 0.002) {
  return make_grid(schedule("polynomial"), n, {smin, 80.0, gauss().model.meta().process});
}
}  // namespace

TEST(Nfe, CountsFollowTheRules) {
  EXPECT_EQ(count_nfe(find_solver("euler"), poly_grid(10), {}, false), 10);
  EXPECT_EQ(count_nfe(find_solver("heun"), poly_grid(10), {}, false), 20);
  EXPECT_EQ(count_nfe(find_solver("heun"), poly_grid(10, 0.0), {}, false), 19);  // Euler step to σ = 0
  EXPECT_EQ(count_nfe(find_solver("dpm2"), poly_grid(10), {true, 0}, false), 19);  // AFS saves one
  EXPECT_EQ(count_nfe(find_solver("dpmpp3m"), poly_grid(7), {}, true), 8);       // denoise_to_zero adds one
  Grid from_inf = poly_grid(10);
  from_inf[0] = INFINITY;  // flow from t = 1: a DDIM first step, then the solver
  EXPECT_EQ(count_nfe(find_solver("heun"), from_inf, {}, false), 1 + 18);
  EXPECT_EQ(count_nfe(find_solver("heun"), from_inf, {true, 0}, false), 18);
}

// The corrector reuses the next step's D: N evaluations for N steps (the last step is not
// corrected; into σ = 0 the loop's x = D is the N-th), one less with AFS, for every max_order.
TEST(Nfe, UniPcCorrectorCostsNoEvaluation) {
  for (const char* name : {"unipc_bh1", "unipc_bh2"})
    for (int n : {1, 2, 5, 12})
      for (int max_order : {1, 2, 3}) {
        const auto& s = find_solver(name);
        EXPECT_EQ(count_nfe(s, poly_grid(n), {false, max_order}, false), n) << name << " " << n;
        EXPECT_EQ(count_nfe(s, poly_grid(n, 0.0), {false, max_order}, false), n) << name << " " << n;
        EXPECT_EQ(count_nfe(s, poly_grid(n), {true, max_order}, false), n - 1) << name << " " << n;
      }
}

TEST(Nfe, TargetPicksStepsAndAfs) {
  const auto& heun = find_solver("heun");
  const SigmaRange r{0.002, 80.0, gauss().model.meta().process};
  StepPlan p = plan_steps(heun, schedule("polynomial"), r, std::nullopt, 6, std::nullopt, 0, false);
  EXPECT_EQ(p.steps, 3);
  EXPECT_FALSE(p.afs);
  p = plan_steps(heun, schedule("polynomial"), r, std::nullopt, 5, std::nullopt, 0, false);
  EXPECT_EQ(p.steps, 3);
  EXPECT_TRUE(p.afs);
  EXPECT_EQ(p.nfe, 5);
  p = plan_steps(find_solver("ipndm"), schedule("logsnr"), r, std::nullopt, 250, std::nullopt, 0, false);
  EXPECT_EQ(p.steps, 250);
  EXPECT_EQ(p.grid.size(), 251u);
}

TEST(Nfe, UnreachableTargetNamesTheNearest) {
  const SigmaRange r{0.002, 80.0, gauss().model.meta().process};
  try {
    plan_steps(find_solver("heun"), schedule("polynomial"), r, std::nullopt, 5, false, 0, false);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot use exactly 5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("4 (2 steps)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("6 (3 steps)"), std::string::npos) << msg;
  }
}

TEST(Registry, EveryListedSolverIsFoundAndUnknownNamesSuggest) {
  for (const auto& name : solver_names()) EXPECT_EQ(find_solver(name).name, name);
  try {
    find_solver("hen");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'heun'"), std::string::npos) << e.what();
  }
}

TEST(Solvers, IpndmVEqualsIpndmOnAUniformGrid) {
  const Grid g = make_grid(schedule("custom", {8, 7, 6, 5, 4, 3, 2, 1}), 7, gauss().range);
  ModelDenoiser a(gauss().model, at::kDouble), b(gauss().model, at::kDouble);
  const Tensor xa = integrate(find_solver("ipndm"), a, gauss().eps, g, {}, false);
  const Tensor xb = integrate(find_solver("ipndm_v"), b, gauss().eps, g, {}, false);
  EXPECT_LT((xa - xb).abs().max().item<double>(), 1e-12);
}

// ---- solvers on the vp_time grid (the schedule itself: test_schedule.cpp)

TEST(VpTime, EverySolversErrorShrinks) {
  // Not an observed order from 16 steps: to sigma_min = 0.002 the last interval is long in
  // log sigma (4.6 at 16 steps, the others 0.3-0.7), and DPM-Solver++ extrapolates over it
  // (dpmpp3m's error at 16 steps is about 0.5); fixed-weight ipndm converges slowly on it.
  for (const auto& s : solvers()) {
    const double e32 = gauss().error(s.name, 32, "vp_time"), e64 = gauss().error(s.name, 64, "vp_time"),
                 e128 = gauss().error(s.name, 128, "vp_time");
    EXPECT_LT(e64, e32) << s.name;
    EXPECT_LT(e128, e64) << s.name;
    EXPECT_LT(e128, 0.05) << s.name;
  }
}
