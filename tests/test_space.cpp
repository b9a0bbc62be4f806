// The plan around a solver: the variable it integrates in (solver.space, DESIGN.md §2) and
// the analytical first step with the data mean (solver.afs "mean", §4), on Gaussian data whose
// ODE has a closed-form solution, and on the config.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "diffode/runs/config.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/integrate.hpp"
#include "diffode/core/noise.hpp"
#include "diffode/core/process.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"
#include "test_util.hpp"

using namespace diffode;
using nlohmann::json;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The exact denoiser of Gaussian data N(μ, s² I): D(x̃, σ̃) = μ + s²/(s² + σ̃²)(x̃ − μ); at
// σ̃ = ∞ (x̃ given as ε) it is μ. Written here, independently of any model file.
class GaussDenoiser final : public Denoiser {
 public:
  GaussDenoiser(Tensor mu, double s) : mu_(std::move(mu)), s_(s) {}
  Tensor denoise(const Tensor& x, double sigma) override {
    ++calls;
    if (std::isinf(sigma)) return mu_.expand_as(x).clone();
    return mu_ + (x - mu_) * (s_ * s_ / (s_ * s_ + sigma * sigma));
  }
  Tensor denoise(const Tensor& x, const Tensor& sigma) override {
    ++calls;
    std::vector<int64_t> view(static_cast<size_t>(x.dim()), 1);
    view[0] = sigma.size(0);
    const Tensor s2 = sigma.to(x.scalar_type()).view(view).pow(2);
    return mu_ + (x - mu_) * (s_ * s_ / (s_ * s_ + s2));
  }
  int calls = 0;

 private:
  Tensor mu_;
  double s_;
};

struct Gauss {
  double s = 0.5;
  Tensor mu = at::linspace(-0.9, 0.7, 12, at::kDouble).view({3, 2, 2});
  Tensor eps = make_noise(7, 0, 6, {3, 2, 2}).to(at::kDouble);
  GaussDenoiser den{mu, s};

  // x̃(σ_N) from x̃(σ_0) = σ_0 ε: μ + (x̃_0 − μ)·√((s² + σ_N²)/(s² + σ_0²)); from σ_0 = ∞: μ + ε√(s² + σ_N²).
  Tensor exact(const Grid& g) const {
    const double b = g.back();
    if (std::isinf(g.front())) return mu + eps * std::sqrt(s * s + b * b);
    return mu + (eps * g.front() - mu) * std::sqrt((s * s + b * b) / (s * s + g.front() * g.front()));
  }
  double error(const std::string& solver, const Grid& g, const Process* time, bool afs = false,
               const Tensor& afs_x0 = {}) {
    const FixedStep midpoint;
    SolverOptions opt{afs, 0, &midpoint, time, afs_x0};
    const Tensor x = integrate(find_solver(solver), den, eps, g, opt, false);
    return (x - exact(g)).pow(2).mean().sqrt().item<double>();
  }
};

Process process(const char* type) { return Process::from_json({{"type", type}}, "test"); }

Grid grid(const char* schedule, int n, double sigma_min, double sigma_max, const Process& p) {
  return make_grid(test::schedule(schedule), n, {sigma_min, sigma_max, p});
}

double order_in(const char* solver, const char* schedule, double sigma_min, double sigma_max, const Process& p,
                const Process* time, int n) {
  Gauss g;
  return std::log2(g.error(solver, grid(schedule, n, sigma_min, sigma_max, p), time) /
                   g.error(solver, grid(schedule, 2 * n, sigma_min, sigma_max, p), time));
}

}  // namespace

// For a flow model x = (1 − t)x̃... dx/dt = (x − D)/t: Euler in t is DDIM, as Euler in σ̃ is.
TEST(Space, EulerIsTheSameInBothSpacesOnAFlowModel) {
  const Process flow = process("flow");
  for (const Grid& g : {grid("time_uniform", 9, 0.0, kInf, flow), grid("vp_time", 7, 0.002, 80.0, flow)}) {
    Gauss a, b;
    const Tensor in_sigma = integrate(find_solver("euler"), a.den, a.eps, g, {}, false);
    const Tensor in_time = integrate(find_solver("euler"), b.den, b.eps, g, {false, 0, nullptr, &flow}, false);
    EXPECT_LT((in_sigma - in_time).abs().max().item<double>(), 1e-12) << g.front();
    EXPECT_EQ(a.den.calls, b.den.calls);
  }
}

// Heun in "time" is the textbook Heun in t on dx/dt = α'(t) D + σ'(t)(x − α D)/σ, written out
// here; from t = 1 (σ̃ = ∞) the state is x = ε and the denoiser takes ε there.
TEST(Space, HeunInTimeIsPlainHeunInT) {
  const Process flow = process("flow");
  for (const char* type : {"flow", "vp"}) {
    const Process p = process(type);
    const Grid g = std::string(type) == "flow" ? grid("time_uniform", 6, 0.002, kInf, flow)
                                               : grid("polynomial", 6, 0.002, 80.0, p);
    Gauss gs;
    auto f = [&](const Tensor& x, double t) {
      const double a = p.alpha(t), s = p.sigma(t);
      const Tensor d = a == 0 ? gs.den.denoise(x / s, kInf) : gs.den.denoise(x / a, s / a);
      return d * p.dalpha(t) + (x - d * a) / s * p.dsigma(t);
    };
    std::vector<double> t;
    for (double s : g) t.push_back(p.time_of(s));
    Tensor x = gs.eps * (std::isinf(g[0]) ? p.sigma(t[0]) : p.alpha(t[0]) * g[0]);
    for (size_t i = 0; i + 1 < t.size(); ++i) {
      const double h = t[i + 1] - t[i];
      const Tensor k1 = f(x, t[i]);
      const Tensor k2 = f(x + k1 * h, t[i + 1]);
      x = x + (k1 + k2) * (h / 2);
    }
    const Tensor plain = x / p.alpha(t.back());
    Gauss ours;
    const Tensor got = integrate(find_solver("heun"), ours.den, ours.eps, g, {false, 0, nullptr, &p}, false);
    EXPECT_LT((got - plain).abs().max().item<double>(), 1e-12) << type;
    EXPECT_EQ(ours.den.calls, 2 * 6) << type;  // from t = 1 too: two evaluations per interval
  }
}

// Measured orders in t (N = 32 → 64): flow on the time-uniform grid from t = 1 to σ̃ 0.002,
// vp on the polynomial grid 80 → 0.002 (DESIGN.md §2). iPNDM's warm start (Euler, then order
// 2, ...) leaves it second order globally (flow, N = 64 → 128: 2.03 for ipndm and ipndm_v).
TEST(Space, OrdersInTime) {
  const Process flow = process("flow"), vp = process("vp");
  struct Case {
    const char* solver;
    double lo, hi;
  };
  for (const Case& c : {Case{"euler", 0.85, 1.3}, Case{"heun", 1.8, 2.6}, Case{"dpm2", 1.8, 2.6},
                        Case{"ipndm", 1.8, 4.6}, Case{"ipndm_v", 1.8, 4.6}, Case{"amed", 1.8, 2.6},
                        Case{"amed+ipndm", 1.8, 4.6}}) {
    const double p_flow = order_in(c.solver, "time_uniform", 0.002, kInf, flow, &flow, 32);
    EXPECT_GT(p_flow, c.lo) << c.solver << " flow";
    EXPECT_LT(p_flow, c.hi) << c.solver << " flow";
    const double p_vp = order_in(c.solver, "polynomial", 0.002, 80.0, vp, &vp, 32);
    EXPECT_GT(p_vp, c.lo) << c.solver << " vp";
    EXPECT_LT(p_vp, c.hi) << c.solver << " vp";
  }
}

// The same solvers in σ̃ on the same grids (the order does not depend on the variable).
TEST(Space, OrdersInSigmaOnTheSameGrids) {
  const Process flow = process("flow"), vp = process("vp");
  for (const char* solver : {"heun", "dpm2"}) {
    const double p_flow = order_in(solver, "time_uniform", 0.002, 80.0, flow, nullptr, 16);
    EXPECT_GT(p_flow, 1.8) << solver;
    EXPECT_LT(p_flow, 2.6) << solver;
    const double p_vp = order_in(solver, "polynomial", 0.002, 80.0, vp, nullptr, 32);
    EXPECT_GT(p_vp, 1.8) << solver;
    EXPECT_LT(p_vp, 2.6) << solver;
  }
}

// In t a flow model's first interval from t = 1 is an ordinary interval, so heun spends two
// evaluations on it (in σ̃: the one of the exact limit); into σ = 0 the last is an Euler step.
TEST(Space, NfeInTime) {
  const Process flow = process("flow");
  const Grid g = grid("time_uniform", 5, 0.0, kInf, flow);
  EXPECT_EQ(count_nfe(find_solver("heun"), g, {}, false), 1 + 2 * 3 + 1);
  EXPECT_EQ(count_nfe(find_solver("heun"), g, {false, 0, nullptr, &flow}, false), 2 * 4 + 1);
  EXPECT_EQ(count_nfe(find_solver("heun"), g, {true, 0, nullptr, &flow}, false), 2 * 4);  // AFS saves one
  EXPECT_EQ(count_nfe(find_solver("euler"), g, {false, 0, nullptr, &flow}, false), 5);
}

TEST(Space, ExponentialIntegratorsHaveNoTimeSpace) {
  for (const auto& s : solvers()) {
    const bool exponential = s.name.rfind("dpmpp", 0) == 0 || s.name.rfind("unipc", 0) == 0 ||
                             s.name == "amed+dpmpp2m";
    EXPECT_EQ(s.in_time, !exponential) << s.name;
  }
}

// AFS with the data mean: the first d is (x̃ − μ)/σ_0, so Euler's first step is the DDIM step
// with D = μ exactly; on data whose mean is far from 0 it beats the zero-mean rule.
TEST(AfsMean, FirstStepUsesTheMean) {
  const Process flow = process("flow");
  const Grid g = grid("vp_time", 4, 0.002, 80.0, flow);
  Gauss a;
  const Tensor mu = a.mu.unsqueeze(0);
  const SolverOptions opt{true, 0, nullptr, nullptr, mu};
  Tensor first;
  integrate(find_solver("euler"), a.den, a.eps, g, opt, false, [&](int i, const Tensor& x) {
    if (i == 0) first = x.clone();
  });
  const Tensor ddim = mu + (a.eps * g[0] - mu) * (g[1] / g[0]);
  EXPECT_LT((first - ddim).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(a.den.calls, 3);  // no evaluation at σ_0

  // Its error from the first step alone (against the same solver without AFS) is far below
  // the zero-mean rule's, in both spaces.
  for (const Process* time : {static_cast<const Process*>(nullptr), &flow})
    for (const char* solver : {"euler", "heun", "ipndm"}) {
      auto run = [&](bool afs, const Tensor& x0) {
        Gauss b;
        return integrate(find_solver(solver), b.den, b.eps, g, {afs, 0, nullptr, time, x0}, false);
      };
      const Tensor none = run(false, {});
      const double plain = (run(true, {}) - none).abs().max().item<double>();
      const double mean = (run(true, mu) - none).abs().max().item<double>();
      EXPECT_LT(mean, 0.01 * plain) << solver << (time ? " in time " : " ") << mean << " " << plain;
    }
}

TEST(AfsMean, EulerAgreesInBothSpaces) {
  const Process flow = process("flow");
  const Grid g = grid("vp_time", 5, 0.002, 80.0, flow);
  Gauss a, b;
  const Tensor mu = a.mu.unsqueeze(0);
  const Tensor x_sigma = integrate(find_solver("euler"), a.den, a.eps, g, {true, 0, nullptr, nullptr, mu}, false);
  const Tensor x_time = integrate(find_solver("euler"), b.den, b.eps, g, {true, 0, nullptr, &flow, mu}, false);
  EXPECT_LT((x_sigma - x_time).abs().max().item<double>(), 1e-12);
}

TEST(SpaceConfig, ReadAndRefused) {
  const json base = {{"model", {{"path", "m.pt"}}}};
  auto parse = [&](const json& solver) {
    json j = base;
    j["solver"] = solver;
    return parse_config(j, "c.json", ".", {});
  };
  Config c = parse({{"name", "heun"}, {"space", "time"}, {"afs", "mean"}});
  EXPECT_EQ(c.solver.space, Space::time);
  EXPECT_EQ(c.solver.afs, Afs::mean);
  EXPECT_EQ(to_json(c)["solver"]["afs"], "mean");
  EXPECT_EQ(to_json(c)["solver"]["space"], "time");
  EXPECT_FALSE(parse({{"name", "heun"}}).solver.space.has_value());
  try {
    parse({{"name", "dpmpp2m"}, {"space", "time"}});
    FAIL() << "accepted dpmpp2m in time";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.pointer(), "/solver/space");
    EXPECT_NE(std::string(e.what()).find("exponential integrator"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("heun"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse({{"name", "heun"}, {"space", "t"}}), ConfigError);
  try {
    parse({{"name", "heun"}, {"afs", "median"}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.pointer(), "/solver/afs");
    EXPECT_NE(std::string(e.what()).find("\"mean\""), std::string::npos) << e.what();
  }
}

TEST(SpaceConfig, DefaultIsTimeForTrainingFreeSolversOnFlow) {
  const Process flow = process("flow"), vp = process("vp"), edm = process("edm");
  EXPECT_EQ(default_space(find_solver("heun"), flow), Space::time);
  EXPECT_EQ(default_space(find_solver("euler"), flow), Space::time);
  EXPECT_EQ(default_space(find_solver("dpmpp2m"), flow), Space::sigma);
  EXPECT_EQ(default_space(find_solver("amed"), flow), Space::sigma);
  EXPECT_EQ(default_space(find_solver("heun"), vp), Space::sigma);
  EXPECT_EQ(default_space(find_solver("heun"), edm), Space::sigma);
}
