#pragma once
// From noise to samples over a sigma grid: the integration loop shared by all solvers, its
// model evaluations (NFE), and NFE planning (DESIGN.md §3, §4).
#include <ATen/core/Tensor.h>

#include <optional>

#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"

namespace diffode {

// Integrates from noise ε (x̃ = σ_0 ε) over `grid` with `solver` and returns x̃ at σ_N
// (or x̂0 with denoise_to_zero: one more evaluation at σ_N). A grid starting at σ_0 = inf
// (flow from t = 1) takes its first interval as the exact limit of the DDIM step,
// x̃_1 = D(ε, inf) + σ_1 ε (with AFS: σ_1 ε, no evaluation), and the solver continues
// from σ_1. `on_step(i)` runs after interval i.
Tensor integrate(const SolverInfo& solver, Denoiser& den, const Tensor& eps, const Grid& grid,
                 const SolverOptions& opt, bool denoise_to_zero, const StepCallback& on_step = [](int, const Tensor&) {});

// Model evaluations per sample of that integration, counted on a stand-in denoiser.
int count_nfe(const SolverInfo& solver, const Grid& grid, const SolverOptions& opt, bool denoise_to_zero);

// Steps when neither steps nor a target NFE is given (and the schedule does not fix them).
constexpr int kDefaultSteps = 18;

struct StepPlan {
  int steps;
  int nfe;
  bool afs;
  Grid grid;  // σ̃
  Space space = Space::sigma;
};

// Resolves `steps`, or a target `nfe` (choosing N, and AFS when `afs` is unset), into a
// grid, for the solver integrating in `space` (time: range.process's), an AMED solver
// with `learned_last` learning its interval into σ = 0 too. Throws InputError
// naming the reachable NFEs when the target cannot be hit.
StepPlan plan_steps(const SolverInfo& solver, const ScheduleSpec& schedule, const SigmaRange& range,
                    std::optional<int> steps, std::optional<int> nfe, std::optional<bool> afs, int max_order,
                    bool denoise_to_zero, Space space = Space::sigma, bool learned_last = false);

}  // namespace diffode
