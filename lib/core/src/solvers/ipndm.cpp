// iPNDM (Zhang & Chen 2022, DEIS; improved PNDM of Liu et al. 2022): Adams–Bashforth
// on the history of d = v(x, σ), with a warm start of increasing order.
#include <ATen/ATen.h>

#include <algorithm>
#include <deque>

#include "solvers/solvers.hpp"

namespace diffode::solver_impl {

const std::vector<double>& ipndm_weights(int order) {
  static const std::vector<std::vector<double>> w = {
      {1.0},
      {3.0 / 2, -1.0 / 2},
      {23.0 / 12, -16.0 / 12, 5.0 / 12},
      {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24},
  };
  return w.at(static_cast<size_t>(order - 1));
}

namespace {

// Shared loop: `weights(i, order)` gives the combination of d_i, d_{i-1}, ...
// Its step into σ = 0 is the same Adams–Bashforth step.
template <class Weights>
Tensor adams_bashforth(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step,
                       Weights weights) {
  const Grid& sigmas = ev.grid();
  const int max_order = opt.max_order;
  std::deque<Tensor> d_hist;  // d_i, d_{i-1}, ... newest first
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1];
    d_hist.push_front(ev.d(x, i));
    if (static_cast<int>(d_hist.size()) > max_order) d_hist.pop_back();
    const int order = std::min(max_order, i + 1);
    const std::vector<double> w = weights(i, order);
    const double h = t_next - t_cur;
    for (int j = 0; j < order; ++j) x.add_(d_hist[j], h * w[j]);
    on_step(i, x);
  }
  return x;
}

}  // namespace

std::vector<double> adams_bashforth_weights(const std::vector<double>& past, double next) {
  // In u = (σ − σ_i)/h the step is [0, 1] and the nodes are u_k = (σ_{i-k} − σ_i)/h.
  const double h = next - past[0];
  const size_t n = past.size();
  std::vector<double> u(n);
  for (size_t k = 0; k < n; ++k) u[k] = (past[k] - past[0]) / h;
  std::vector<double> w(n);
  for (size_t j = 0; j < n; ++j) {
    std::vector<double> poly = {1.0};  // coefficients of the Lagrange basis L_j(u), lowest first
    for (size_t k = 0; k < n; ++k) {
      if (k == j) continue;
      const double scale = 1.0 / (u[j] - u[k]);
      std::vector<double> next_poly(poly.size() + 1, 0.0);
      for (size_t p = 0; p < poly.size(); ++p) {
        next_poly[p + 1] += poly[p] * scale;
        next_poly[p] -= poly[p] * u[k] * scale;
      }
      poly = std::move(next_poly);
    }
    double integral = 0;  // ∫_0^1 L_j(u) du
    for (size_t p = 0; p < poly.size(); ++p) integral += poly[p] / static_cast<double>(p + 1);
    w[j] = integral;
  }
  return w;
}

// iPNDM: fixed Adams–Bashforth weights whatever the step sizes.
Tensor ipndm(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  return adams_bashforth(ev, std::move(x), opt, on_step, [](int, int order) { return ipndm_weights(order); });
}

// iPNDM with variable-step Adams–Bashforth weights from the actual σ's.
Tensor ipndm_v(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  const Grid& sigmas = ev.grid();
  return adams_bashforth(ev, std::move(x), opt, on_step, [&sigmas](int i, int order) {
    std::vector<double> past(sigmas.begin() + (i - order + 1), sigmas.begin() + i + 1);
    std::reverse(past.begin(), past.end());
    return adams_bashforth_weights(past, sigmas[i + 1]);
  });
}

}  // namespace diffode::solver_impl
