// Single-step solvers, in σ̃ or in the model's time (GridEval): Euler, Heun, DPM-Solver-2. History: none beyond the step.
#include <ATen/ATen.h>

#include <cmath>

#include "solvers/solvers.hpp"

namespace diffode::solver_impl {

// Euler's method; in σ̃ (and in a flow model's t) it is exactly DDIM (Song et al. 2021).
Tensor euler(GridEval& ev, Tensor x, const SolverOptions&, const StepCallback& on_step) {
  const Grid& sigmas = ev.grid();
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1];
    x.add_(ev.d(x, i), t_next - t_cur);
    on_step(i, x);
  }
  return x;
}

// Heun's 2nd-order method (Karras et al. 2022, Algorithm 1).
Tensor heun(GridEval& ev, Tensor x, const SolverOptions&, const StepCallback& on_step) {
  const Grid& sigmas = ev.grid();
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1], h = t_next - t_cur;
    const Tensor d_cur = ev.d(x, i);
    const Tensor d_prime = ev.d_at(at::add(x, d_cur, h), t_next);
    x.add_(d_cur, 0.5 * h).add_(d_prime, 0.5 * h);
    on_step(i, x);
  }
  return x;
}

// DPM-Solver-2 (Lu et al. 2022): midpoint at the geometric mean of the two grid values.
Tensor dpm2(GridEval& ev, Tensor x, const SolverOptions&, const StepCallback& on_step) {
  const Grid& sigmas = ev.grid();
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1], h = t_next - t_cur;
    const double t_mid = std::sqrt(t_cur * t_next);
    const Tensor d_cur = ev.d(x, i);
    const Tensor d_mid = ev.d_at(at::add(x, d_cur, t_mid - t_cur), t_mid);
    x.add_(d_mid, h);
    on_step(i, x);
  }
  return x;
}

}  // namespace diffode::solver_impl
