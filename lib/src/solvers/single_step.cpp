// Single-step solvers in σ: Euler, Heun, DPM-Solver-2. History: none beyond the step.
#include <ATen/ATen.h>

#include <cmath>

#include "solvers/solvers.hpp"

namespace diffode::solver_impl {

Tensor first_velocity(Denoiser& den, const Tensor& x, double sigma0, const SolverOptions& opt) {
  // AFS (Dockhorn et al. 2022; Zhou et al. 2024): at large σ, ε̂ ≈ x / sqrt(1 + σ²).
  if (opt.afs) return x / std::sqrt(1.0 + sigma0 * sigma0);
  return velocity(den, x, sigma0);
}

// Euler's method in σ; in the scaled space it is exactly DDIM (Song et al. 2021).
Tensor euler(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step) {
  for (int i = 0; i < num_steps(sigmas); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1];
    const Tensor d_cur = i == 0 ? first_velocity(den, x, t_cur, opt) : velocity(den, x, t_cur);
    x.add_(d_cur, t_next - t_cur);
    on_step(i, x);
  }
  return x;
}

// Heun's 2nd-order method (Karras et al. 2022, Algorithm 1); Euler on a step to σ = 0.
Tensor heun(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step) {
  for (int i = 0; i < num_steps(sigmas); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1], h = t_next - t_cur;
    const Tensor d_cur = i == 0 ? first_velocity(den, x, t_cur, opt) : velocity(den, x, t_cur);
    if (t_next > 0) {
      const Tensor d_prime = velocity(den, at::add(x, d_cur, h), t_next);
      x.add_(d_cur, 0.5 * h).add_(d_prime, 0.5 * h);
    } else {
      x.add_(d_cur, h);
    }
    on_step(i, x);
  }
  return x;
}

// DPM-Solver-2 (Lu et al. 2022) in σ: midpoint at the geometric mean of the two σ's;
// Euler on a step to σ = 0.
Tensor dpm2(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step) {
  for (int i = 0; i < num_steps(sigmas); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1], h = t_next - t_cur;
    const Tensor d_cur = i == 0 ? first_velocity(den, x, t_cur, opt) : velocity(den, x, t_cur);
    if (t_next > 0) {
      const double t_mid = std::sqrt(t_cur * t_next);
      const Tensor d_mid = velocity(den, at::add(x, d_cur, t_mid - t_cur), t_mid);
      x.add_(d_mid, h);
    } else {
      x.add_(d_cur, h);
    }
    on_step(i, x);
  }
  return x;
}

}  // namespace diffode::solver_impl
