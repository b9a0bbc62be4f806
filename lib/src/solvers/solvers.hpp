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

// Variable-step Adams–Bashforth weights: w_j such that ∫_{σ_i}^{σ_{i+1}} d ≈ h Σ_j w_j d_{i-j},
// from the nodes past[j] = σ_{i-j} (past[0] = σ_i) and the step to `next` = σ_{i+1}.
std::vector<double> adams_bashforth_weights(const std::vector<double>& past, double next);

}  // namespace diffode::solver_impl
