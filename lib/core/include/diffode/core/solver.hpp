#pragma once
// The solver registry: name -> solver function over a precomputed sigma grid.
// Solvers see only the denoiser D(x̃, σ̃), the grid and the state (DESIGN.md §2, §4).
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "diffode/core/grid.hpp"

namespace diffode {

using Tensor = at::Tensor;
// D and the model's bottleneck feature [B, F] from one evaluation (for AMED).
struct Denoised {
  Tensor x0;
  Tensor feature;
};

// What a solver sees of the model: the denoiser D(x̃, σ̃) of DESIGN.md §2.
// At σ̃ = +inf (a flow model at t = 1) the argument is ε = x̃/σ̃ instead of x̃.
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  virtual Tensor denoise(const Tensor& x, double sigma) = 0;
  // D at a finite σ̃ > 0 of each sample (sigma: [B]); differentiable in x and sigma.
  virtual Tensor denoise(const Tensor& x, const Tensor& sigma) = 0;
  // D and the feature from the same evaluation; a denoiser without features gives
  // zeros [B, feature_dim()].
  virtual Denoised denoise_with_feature(const Tensor& x, double sigma);
  // Width of the features it gives (1 for the zeros of a denoiser without features).
  virtual int64_t feature_dim() const { return 1; }
};

// One AMED step's predicted parameters (DESIGN.md §4), each [B]: the mean-value point's
// position r ∈ (0, 1) between σ_i and σ_{i+1}, the direction scale c and the time scale a.
struct MeanValueStep {
  Tensor r, c, a;
};

// g_φ of AMED: the step parameters of each sample from its feature [B, F] at σ_i.
class StepPredictor {
 public:
  virtual ~StepPredictor() = default;
  virtual MeanValueStep predict(const Tensor& feature, double sigma_cur, double sigma_next) const = 0;
};

// Constant step parameters: r = ½, c = a = 1 turns AMED into DPM-Solver-2 and the
// plugins into their base solvers on the grid refined at geometric midpoints.
class FixedStep final : public StepPredictor {
 public:
  explicit FixedStep(double r = 0.5, double c = 1.0, double a = 1.0) : r_(r), c_(c), a_(a) {}
  MeanValueStep predict(const Tensor& feature, double sigma_cur, double sigma_next) const override;

 private:
  double r_, c_, a_;
};

// AFS's zero-mean rule (DESIGN.md §4): the first direction is d_0 = ε̂ ≈ x̃ / √(1 + σ̃²), what
// a zero data mean gives, with no model call. zero_mean_norm(σ̃) = √(1 + σ̃²);
// zero_mean_x0_factor(σ̃) = 1 − σ̃/√(1 + σ̃²), so that D ≈ x̃ · factor (0 at σ̃ = ∞).
double zero_mean_norm(double sigma);
double zero_mean_x0_factor(double sigma);

// Per-sample values v [B] as [B, 1, ...] in x's dtype, to broadcast over a batch x.
Tensor per_sample(const Tensor& v, const Tensor& x);

// v(x̃, σ̃) = (x̃ − D(x̃, σ̃)) / σ̃: the probability-flow ODE's velocity (= ε̂).
Tensor velocity(Denoiser& den, const Tensor& x, double sigma);

class Process;

// The variable a solver integrates in (DESIGN.md §2): x̃ over σ̃, or x over the model's own t.
enum class Space { sigma, time };

struct SolverOptions {
  bool afs = false;   // analytical first step: d_0 = x / sqrt(1 + σ_0²), no NFE (applied by solve())
  int max_order = 0;  // multistep order cap; 0 = the solver's default
  const StepPredictor* predictor = nullptr;  // the AMED solvers' g_φ (required by them)
  // The variable integrated in (DESIGN.md §2): null, x̃ over σ̃; else x = α(t)·x̃ in model
  // space over this process's own time t (solvers with SolverInfo::in_time only).
  const Process* time = nullptr;
  // AFS's D(x, σ_0) when defined (the data mean μ_y per sample, broadcast over x): the first
  // d is then (x − afs_x0)/σ_0. Undefined: the zero-mean rule above.
  Tensor afs_x0 = {};
  // AMED solvers, a grid ending at σ = 0: learn the last interval too, its mean-value point
  // at s = (1 − r)·σ_i (the geometric rule has none there); else the base solver's step.
  bool learned_last = false;
};

// Called after each grid interval i (0-based) is completed, with the state x_{i+1}.
using StepCallback = std::function<void(int, const Tensor&)>;

// The grid as a solver sees it (solvers/solvers.hpp): its points' evaluations, with the
// loop's first-step rule (AFS) applied, and the intervals the solver takes itself.
class GridEval;

// A solver over its grid: integrates x from ev.sigmas()[0] over the first ev.steps()
// intervals, history in local variables, and returns the state.
using SolverFn = Tensor (*)(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step);

// How the last interval, into σ = 0, is taken: by the loop, as an Euler step (x + h·d, the
// exact DDIM step to D) or as D itself (the exponential integrators' limit), or by the
// solver's own update (one that is defined there: Euler, Adams–Bashforth).
enum class ToZero { euler, denoised, own };

struct SolverInfo {
  std::string name;
  std::string description;   // with the paper it follows
  std::string nfe_rule = "N";  // NFE as a function of the number of steps N
  int order = 1;             // global convergence order
  int default_max_order = 0;  // 0: max_order does not apply to this solver
  SolverFn fn = nullptr;
  ToZero to_zero = ToZero::own;
  bool learned = false;      // an AMED solver: needs a step predictor (SolverOptions::predictor)
  bool multistep = false;    // keeps a history across intervals (AMED distillation runs it on its own trajectory)
  bool in_time = false;      // also integrates in the model's own time (SolverOptions::time)
};

// Integrates x̃ from grid.front() to grid.back() (may be 0) with `solver` and returns x̃
// there: AFS on the first point when opt.afs, the last interval into σ = 0 by
// solver.to_zero, max_order 0 as the solver's default. From grid.front() = inf (a flow
// model at t = 1) x is ε, and the first interval is the exact DDIM limit
// x̃_1 = D(ε, inf) + σ_1 ε (with AFS: afs_x0 or 0 for D) unless opt.time, where the solver
// takes it in t. `on_step(i, x̃)` after each interval. Throws std::logic_error when
// opt.time is set for a solver without in_time (callers check the config first).
Tensor solve(const SolverInfo& solver, Denoiser& den, Tensor x, const Grid& grid, SolverOptions opt,
             const StepCallback& on_step);

// Every solver, in the order `diffode solvers` lists them.
const std::vector<SolverInfo>& solvers();
std::vector<std::string> solver_names();
// Throws InputError naming the valid solvers (and the closest one) for an unknown name.
const SolverInfo& find_solver(const std::string& name);

}  // namespace diffode
