// The integration loop shared by all solvers, its NFE and NFE planning (DESIGN.md §3, §4).
#include "diffode/core/integrate.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "diffode/core/error.hpp"

namespace diffode {

Tensor integrate(const SolverInfo& solver, Denoiser& den, const Tensor& eps, const Grid& grid,
                 const SolverOptions& opt, bool denoise_to_zero, const StepCallback& on_step) {
  // x̃ = σ_0 ε; from σ̃ = ∞ (a flow model at t = 1) solve() takes ε itself.
  Tensor x = solve(solver, den, std::isinf(grid.front()) ? eps : eps * grid[0], grid, opt, on_step);
  if (denoise_to_zero) x = den.denoise(x, grid.back());
  return x;
}

namespace {
// Counts denoiser calls; returns D = 0.
class CountingDenoiser final : public Denoiser {
 public:
  Tensor denoise(const Tensor& x, double) override {
    ++calls;
    return at::zeros_like(x);
  }
  Tensor denoise(const Tensor& x, const Tensor&) override {
    ++calls;
    return at::zeros_like(x);
  }
  int calls = 0;
};
}  // namespace

int count_nfe(const SolverInfo& solver, const Grid& grid, const SolverOptions& opt, bool denoise_to_zero) {
  CountingDenoiser den;
  // The NFE of an AMED solver does not depend on what its predictor says.
  const FixedStep midpoint;
  SolverOptions counting = opt;
  if (solver.learned && !counting.predictor) counting.predictor = &midpoint;
  integrate(solver, den, at::ones({1}, at::kDouble), grid, counting, denoise_to_zero);
  return den.calls;
}

StepPlan plan_steps(const SolverInfo& solver, const ScheduleSpec& schedule, const SigmaRange& range,
                    std::optional<int> steps, std::optional<int> nfe, std::optional<bool> afs, int max_order,
                    bool denoise_to_zero, Space space, bool learned_last) {
  const Process* time = space == Space::time ? &range.process : nullptr;
  auto plan_for = [&](int n, bool with_afs) {
    StepPlan p{n, 0, with_afs, make_grid(schedule, n, range), space};
    p.nfe = count_nfe(solver, p.grid, SolverOptions{with_afs, max_order, nullptr, time, {}, learned_last}, denoise_to_zero);
    return p;
  };
  if (!nfe) return plan_for(steps.value_or(fixed_steps(schedule).value_or(kDefaultSteps)), afs.value_or(false));

  const int target = *nfe;
  std::vector<bool> afs_choices = afs ? std::vector<bool>{*afs} : std::vector<bool>{false, true};
  std::vector<std::string> reachable;
  for (bool with_afs : afs_choices) {
    if (auto fixed = fixed_steps(schedule)) {
      StepPlan p = plan_for(*fixed, with_afs);
      if (p.nfe == target) return p;
      reachable.push_back(std::to_string(p.nfe) + " (" + std::to_string(*fixed) + " steps" +
                          (with_afs ? ", afs" : "") + ")");
      continue;
    }
    // NFE grows strictly with the number of steps: bisect for the step count.
    int lo = 1, hi = target + 1;
    StepPlan below{0, -1, with_afs, {}}, above{0, -1, with_afs, {}};
    while (lo <= hi) {
      const int mid = (lo + hi) / 2;
      StepPlan p = plan_for(mid, with_afs);
      if (p.nfe == target) return p;
      if (p.nfe < target) {
        below = p;
        lo = mid + 1;
      } else {
        above = p;
        hi = mid - 1;
      }
    }
    for (const StepPlan* p : {&below, &above})
      if (p->nfe >= 0)
        reachable.push_back(std::to_string(p->nfe) + " (" + std::to_string(p->steps) + " steps" +
                            (with_afs ? ", afs" : "") + ")");
  }
  std::string msg = "solver '" + solver.name + "' cannot use exactly " + std::to_string(target) +
                    " model evaluations on this schedule (" + solver.nfe_rule + ")";
  if (!reachable.empty()) {
    msg += "; nearest reachable:";
    for (size_t i = 0; i < reachable.size(); ++i) msg += (i ? ", " : " ") + reachable[i];
  }
  throw InputError(msg);
}

}  // namespace diffode
