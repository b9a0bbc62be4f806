// UniPC (Zhao, Bai, Rao, Zhou, Lu: "UniPC: A Unified Predictor-Corrector Framework for Fast
// Sampling of Diffusion Models", NeurIPS 2023): the multistep UniP predictor (§3.2) with the
// UniC corrector (§3.1), in data prediction (the paper's x0 variant, its appendix), in
// λ = −log σ̃ as DPM-Solver++ (dpmpp.cpp), h = λ_{i+1} − λ_i > 0.
//
// With m(λ) = D at λ, the exact step (variation of constants, the paper's exact solution in
// data prediction) is
//     x_{i+1} = (σ_{i+1}/σ_i) x_i + ∫_0^h e^{−(h−u)} m(λ_i + u) du,
// and both UniP-p and UniC-p take
//     x_{i+1} = (σ_{i+1}/σ_i) x_i + (1 − e^{−h}) m_i + Σ_k w_k D_k / r_k,    w = B(h) a_p,
// D_k = m(λ_i + r_k h) − m_i. UniP-p uses the p − 1 earlier points (r_k < 0); UniC-p adds the
// new point σ_{i+1} (r = 1), whose D at the predicted state is the next step's m_i, so the
// corrector costs no NFE (the paper's multistep UniPC algorithm). The order conditions of
// §3.1's theorem on UniC-p's order of accuracy, a_p = R_p(h)^{-1} g_p(h) / B(h) with R_p's rows
// r_k^{j−1}, read Σ_k w_k r_k^{j−1} = g_j = j!·h·φ_{j+1}(−h), j = 1…K (the paper's g_p and B taken
// at −h in data prediction, hence B(h) = h or 1 − e^{−h} here). With K ≥ 2 differences the system
// is solved and B cancels; with one, a_1 = ½ as in the paper (UniP-2 and UniC-1), the only place
// where B_1(h) = h and B_2(h) = e^h − 1 differ. UniP-2 with B_2 is DPM-Solver++(2M)'s step.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <deque>

#include "solvers/solvers.hpp"

namespace diffode::solver_impl {

namespace {

// Solves Σ_k a[j][k] w_k = b_j (a few unknowns) by Gaussian elimination with partial pivoting.
std::vector<double> solve_linear(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[p][c])) p = r;
    std::swap(a[c], a[p]);
    std::swap(b[c], b[p]);
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> w(n);
  for (size_t c = n; c-- > 0;) {
    double s = b[c];
    for (size_t k = c + 1; k < n; ++k) s -= a[c][k] * w[k];
    w[c] = s / a[c][c];
  }
  return w;
}

// g_j = j!·h·φ_{j+1}(−h) for j = 1…k, from φ_1(z) = (e^z − 1)/z and φ_{j+1}(z) = (φ_j(z) − 1/j!)/z:
// with γ_j = j!·φ_j(−h), g_j = 1 − γ_j and γ_{j+1} = (j+1)·g_j / h.
std::vector<double> order_conditions(double h, size_t k) {
  std::vector<double> g(k);
  double gamma = -std::expm1(-h) / h;
  for (size_t j = 1; j <= k; ++j) {
    g[j - 1] = 1.0 - gamma;
    gamma = static_cast<double>(j + 1) * g[j - 1] / h;
  }
  return g;
}

// A data prediction at an earlier grid point.
struct Past {
  Tensor m;
  double sigma;
};

// x + Σ_k w_k (m_k − m0) / r_k.
Tensor add_differences(Tensor x, const Tensor& m0, const std::vector<Tensor>& m, const std::vector<double>& r,
                       const std::vector<double>& w) {
  for (size_t k = 0; k < m.size(); ++k) x.add_(m[k] - m0, w[k] / r[k]);
  return x;
}

// The multistep loop. Step i has DPM-Solver++'s order p (warm-up, lower orders on the last
// steps when n < 10): UniP-p to the predicted x̃_{i+1}, D there, then UniC-p from the same
// start with that D. The last step the solver takes is not corrected (its D would be an
// extra NFE); into σ = 0 the loop then returns D at it (ToZero::denoised).
Tensor unipc(GridEval& ev, Tensor x, int max_order, const StepCallback& on_step, UniPcB b) {
  const Grid& sigmas = ev.grid();
  const int n = num_steps(sigmas);
  max_order = std::clamp(max_order, 1, 3);
  if (ev.steps() == 0) return x;  // one interval, into σ = 0: the loop's
  std::deque<Past> past;          // the earlier points, newest first (at most max_order − 1)
  Tensor m0 = ev.x0(x, 0);
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1], h = std::log(t_cur / t_next);
    const int order = dpmpp_step_order(i, n, max_order, t_next);
    std::vector<Tensor> m;
    std::vector<double> r;  // r_k = (λ_k − λ_i)/h
    for (int k = 0; k + 1 < order; ++k) {
      m.push_back(past[static_cast<size_t>(k)].m);
      r.push_back(std::log(t_cur / past[static_cast<size_t>(k)].sigma) / h);
    }
    const Tensor base = dpmpp_step(x, m0, Tensor(), t_cur, t_next, 0.0, 1);
    x = add_differences(base.clone(), m0, m, r, unipc_weights(r, h, b));  // UniP-p
    if (i + 1 < ev.steps()) {
      const Tensor m_next = ev.x0(x, i + 1);
      m.push_back(m_next);
      r.push_back(1.0);
      x = add_differences(base.clone(), m0, m, r, unipc_weights(r, h, b));  // UniC-p
      past.push_front({m0, t_cur});
      if (static_cast<int>(past.size()) >= max_order) past.pop_back();
      m0 = m_next;
    }
    on_step(i, x);
  }
  return x;
}

}  // namespace

std::vector<double> unipc_weights(const std::vector<double>& r, double h, UniPcB b) {
  if (r.empty()) return {};
  if (r.size() == 1) return {0.5 * (b == UniPcB::bh1 ? h : -std::expm1(-h))};  // B(h)·a_1, a_1 = ½
  std::vector<std::vector<double>> vandermonde(r.size(), std::vector<double>(r.size()));  // R_p: r_k^{j−1}
  for (size_t j = 0; j < r.size(); ++j)
    for (size_t k = 0; k < r.size(); ++k) vandermonde[j][k] = std::pow(r[k], static_cast<double>(j));
  return solve_linear(std::move(vandermonde), order_conditions(h, r.size()));
}

Tensor unipc_bh1(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  return unipc(ev, std::move(x), opt.max_order, on_step, UniPcB::bh1);
}

Tensor unipc_bh2(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  return unipc(ev, std::move(x), opt.max_order, on_step, UniPcB::bh2);
}

}  // namespace diffode::solver_impl
