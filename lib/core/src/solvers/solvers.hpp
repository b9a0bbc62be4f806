#pragma once
// Solver functions behind the registry (solver_registry.cpp). Each integrates over its
// grid; history lives in local variables. The solver owns and updates `x`.
#include "diffode/core/solver.hpp"

namespace diffode {

// What a solver evaluates on its grid. The loop's rules live here, not in the solvers: the
// variable integrated in, AFS, and the last interval.
// - Space (DESIGN.md §2): in σ the grid is σ̃ and the state x̃, d = (x̃ − D)/σ̃. In the
//   model's own time (SolverOptions::time) the grid is t and the state x = α(t)·x̃ in model
//   space, d = dx/dt = α'(t)·D + σ'(t)·ε̂ with ε̂ = (x − α D)/σ (for a flow model
//   d = (x − D)/t: the same form, so Euler is DDIM in both).
// - AFS (Dockhorn et al. 2022; Zhou et al. 2024) replaces the first evaluation, at large σ,
//   by D ≈ μ (SolverOptions::afs_x0) or the zero-mean rule ε̂ ≈ x̃ / sqrt(1 + σ_0²), with a
//   zero feature and no NFE.
// - A grid into σ = 0 whose last interval the loop takes (ToZero) leaves the solver one step
//   fewer.
class GridEval {
 public:
  // `grid`: the solver's grid, σ̃ or (opt.time) t; `steps`: the intervals it takes itself.
  GridEval(Denoiser& den, const Grid& grid, const SolverOptions& opt, int steps)
      : den_(den), grid_(grid), afs_(opt.afs), afs_x0_(opt.afs_x0), time_(opt.time), steps_(steps) {}

  Denoiser& den() const { return den_; }
  // The whole grid (rules that depend on the number of intervals read it all).
  const Grid& grid() const { return grid_; }
  int steps() const { return steps_; }

  // At grid point i: d_i, D(x, σ_i), or both with the feature of that evaluation.
  Tensor d(const Tensor& x, int i) const;
  Tensor x0(const Tensor& x, int i) const;
  struct Point {
    Tensor d, x0, feature;
  };
  Point point(const Tensor& x, int i) const;
  // d at any τ of the grid's variable (a point inside an interval).
  Tensor d_at(const Tensor& x, double tau) const;
  // d at a per-sample τ [B] with the model called at model_tau [B] (AMED's time scale a:
  // model_tau = a·τ); differentiable in x and both.
  Tensor d_at(const Tensor& x, const Tensor& tau, const Tensor& model_tau) const;

 private:
  bool analytic(int i) const { return afs_ && i == 0; }
  // AFS's D at the first point (in time, also where α(t_0) = 0).
  Tensor afs_denoised(const Tensor& x) const;
  // In time: d from the state x, D and the point t.
  Tensor time_derivative(const Tensor& x, const Tensor& x0, double t) const;
  Denoised denoise_in_time(const Tensor& x, double t, bool with_feature) const;

  Denoiser& den_;
  const Grid& grid_;
  bool afs_;
  Tensor afs_x0_;
  const Process* time_;
  int steps_;
};

namespace solver_impl {

inline int num_steps(const Grid& grid) { return static_cast<int>(grid.size()) - 1; }

// The solvers of the registry, each a SolverFn.
using SolverBody = Tensor(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step);
SolverBody euler, heun, dpm2, dpmpp2m, dpmpp3m, ipndm, ipndm_v;
SolverBody amed, amed_euler, amed_dpm2, amed_ipndm, amed_dpmpp2m;
SolverBody unipc_bh1, unipc_bh2;

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

// UniPC's B(h) (Zhao et al. 2023): B_1(h) = h or B_2(h) = e^h − 1 (in data prediction taken at
// −h: the weights below carry h or 1 − e^{−h}).
enum class UniPcB { bh1, bh2 };
// UniPC's weights w_k of D_k / r_k, D_k = m(λ_i + r_k h) − m_i, added to the first-order step
// over h = λ_{i+1} − λ_i in data prediction: UniP's r are the earlier points' (λ_k − λ_i)/h;
// UniC's end with the new point, r = 1. One r: B(h)/2; more: the order conditions solved.
std::vector<double> unipc_weights(const std::vector<double>& r, double h, UniPcB b);

// Variable-step Adams–Bashforth weights: w_j such that ∫_{σ_i}^{σ_{i+1}} d ≈ h Σ_j w_j d_{i-j},
// from the nodes past[j] = σ_{i-j} (past[0] = σ_i) and the step to `next` = σ_{i+1}.
std::vector<double> adams_bashforth_weights(const std::vector<double>& past, double next);

}  // namespace solver_impl
}  // namespace diffode
