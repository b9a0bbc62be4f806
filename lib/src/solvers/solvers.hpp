#pragma once
// Solver functions behind the registry (solver_registry.cpp). Each integrates over the
// whole grid; history lives in local variables. The solver owns and updates `x`.
#include "diffode/solver.hpp"

namespace diffode::solver_impl {

// d_0 at the first grid point: AFS (x / sqrt(1 + σ_0²), no model call) or v(x, σ_0).
Tensor first_velocity(Denoiser& den, const Tensor& x, double sigma0, const SolverOptions& opt);

inline int num_steps(const Grid& grid) { return static_cast<int>(grid.size()) - 1; }

Tensor euler(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor heun(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor dpm2(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor dpmpp2m(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor dpmpp3m(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor ipndm(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor ipndm_v(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);

Tensor amed(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor amed_euler(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor amed_dpm2(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor amed_ipndm(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt, const StepCallback& on_step);
Tensor amed_dpmpp2m(Denoiser& den, Tensor x, const Grid& sigmas, const SolverOptions& opt,
                    const StepCallback& on_step);

// Fixed-step Adams–Bashforth weights of order 1-4 (newest d first).
const std::vector<double>& ipndm_weights(int order);

// DPM-Solver++ multistep: the order used on step i of n (warm-up from 1; with n < 10 lower
// orders on the last steps; first order on a step to σ = 0).
int dpmpp_step_order(int i, int n, int max_order, double t_next);
// One DPM-Solver++ step of order 1 or 2 from t_cur to t_next > 0, from the data prediction
// m0 at t_cur and (order 2) m_prev at the point before, h_prev = log(σ_prev / t_cur).
// T: double, or per-sample values [B, 1, ...] broadcast over x.
template <class T>
Tensor dpmpp_step(const Tensor& x, const Tensor& m0, const Tensor& m_prev, const T& t_cur, const T& t_next,
                  const T& h_prev, int order);

// Variable-step Adams–Bashforth weights: w_j such that ∫_{σ_i}^{σ_{i+1}} d ≈ h Σ_j w_j d_{i-j},
// from the nodes past[j] = σ_{i-j} (past[0] = σ_i) and the step to `next` = σ_{i+1}.
std::vector<double> adams_bashforth_weights(const std::vector<double>& past, double next);

}  // namespace diffode::solver_impl
