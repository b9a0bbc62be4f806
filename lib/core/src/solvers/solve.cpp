// The loop around every solver: the variable integrated in, AFS on the first grid point, the
// first interval from σ̃ = ∞ and the last interval into σ = 0 (DESIGN.md §2, §4).
#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

#include "diffode/core/process.hpp"
#include "solvers/solvers.hpp"

namespace diffode {

namespace {
Tensor copy_like(const Tensor& v, const Tensor& x) { return at::empty_like(x).copy_(v.expand_as(x)); }
}  // namespace

double zero_mean_norm(double sigma) { return std::sqrt(1.0 + sigma * sigma); }
double zero_mean_x0_factor(double sigma) { return std::isinf(sigma) ? 0.0 : 1.0 - sigma / zero_mean_norm(sigma); }

Tensor GridEval::afs_denoised(const Tensor& x) const {
  if (afs_x0_.defined()) return copy_like(afs_x0_, x);
  const double t0 = grid_[0];
  const double alpha = time_->alpha(t0);
  if (alpha == 0) return at::zeros_like(x);  // the zero-mean rule's limit at σ̃ = ∞
  return x * (zero_mean_x0_factor(time_->sigma(t0) / alpha) / alpha);
}

Denoised GridEval::denoise_in_time(const Tensor& x, double t, bool with_feature) const {
  const double alpha = time_->alpha(t), sigma = time_->sigma(t);
  // x̃ = x/α at σ̃ = σ/α; at α = 0 (σ̃ = ∞) the denoiser takes ε = x/σ.
  const Tensor arg = alpha == 0 ? x / sigma : x / alpha;
  const double s = alpha == 0 ? INFINITY : sigma / alpha;
  if (with_feature) return den_.denoise_with_feature(arg, s);
  return {den_.denoise(arg, s), Tensor()};
}

Tensor GridEval::time_derivative(const Tensor& x, const Tensor& x0, double t) const {
  const double alpha = time_->alpha(t), sigma = time_->sigma(t);
  const Tensor eps = (x - x0 * alpha).div_(sigma);
  return eps.mul_(time_->dsigma(t)).add_(x0, time_->dalpha(t));
}

Tensor GridEval::d(const Tensor& x, int i) const {
  const double t = grid_[static_cast<size_t>(i)];
  if (time_) return time_derivative(x, x0(x, i), t);
  if (analytic(i)) {
    if (afs_x0_.defined()) return (x - afs_x0_) / t;
    return x / zero_mean_norm(t);
  }
  return velocity(den_, x, t);
}

Tensor GridEval::x0(const Tensor& x, int i) const {
  const double t = grid_[static_cast<size_t>(i)];
  if (analytic(i)) return time_ || afs_x0_.defined() ? afs_denoised(x) : x - t * d(x, 0);
  if (time_) return denoise_in_time(x, t, false).x0;
  return den_.denoise(x, t);
}

GridEval::Point GridEval::point(const Tensor& x, int i) const {
  const double t = grid_[static_cast<size_t>(i)];
  if (analytic(i)) {
    const Tensor zeros = at::zeros({x.size(0), den_.feature_dim()}, x.options());
    if (time_ || afs_x0_.defined()) return {d(x, 0), afs_denoised(x), zeros};
    const Tensor d0 = d(x, 0);
    return {d0, x - d0 * t, zeros};
  }
  if (time_) {
    Denoised e = denoise_in_time(x, t, true);
    return {time_derivative(x, e.x0, t), e.x0, e.feature};
  }
  Denoised e = den_.denoise_with_feature(x, t);
  return {(x - e.x0) / t, e.x0, e.feature};
}

Tensor GridEval::d_at(const Tensor& x, double tau) const {
  if (time_) return time_derivative(x, denoise_in_time(x, tau, false).x0, tau);
  return velocity(den_, x, tau);
}

Tensor GridEval::d_at(const Tensor& x, const Tensor& tau, const Tensor& model_tau) const {
  if (!time_) return (x - den_.denoise(x, model_tau)) / per_sample(tau, x);
  const Process& p = *time_;
  const Tensor alpha = per_sample(p.alpha(tau), x), sigma = per_sample(p.sigma(tau), x);
  const Tensor x0 = den_.denoise(x / alpha, p.sigma(model_tau) / p.alpha(model_tau));
  return x0 * per_sample(p.dalpha(tau), x) + (x - x0 * alpha) / sigma * per_sample(p.dsigma(tau), x);
}

namespace {

// The solver over a grid with a finite first point, and the loop's last interval into 0.
Tensor run(const SolverInfo& solver, Denoiser& den, Tensor x, const Grid& grid, const SolverOptions& opt,
           const StepCallback& on_step) {
  const int n = solver_impl::num_steps(grid);
  const bool loop_takes_last = grid.back() == 0 && solver.to_zero != ToZero::own && !opt.learned_last;
  GridEval ev(den, grid, opt, loop_takes_last ? n - 1 : n);
  x = solver.fn(ev, std::move(x), opt, on_step);
  if (!loop_takes_last) return x;
  const double t_cur = grid[static_cast<size_t>(n - 1)];
  x = solver.to_zero == ToZero::denoised ? ev.x0(x, n - 1) : x + ev.d(x, n - 1) * (0.0 - t_cur);
  on_step(n - 1, x);
  return x;
}

// In the model's own time: the grid in t, the state x = α(t)·x̃ (σ(t)·ε at σ̃ = ∞);
// on_step and the result in x̃.
Tensor run_in_time(const SolverInfo& solver, Denoiser& den, const Tensor& x, const Grid& sigmas,
                   const SolverOptions& opt, const StepCallback& on_step) {
  if (!solver.in_time) throw std::logic_error("solver '" + solver.name + "' cannot integrate in time");
  const Process& p = *opt.time;
  Grid t(sigmas.size());
  for (size_t i = 0; i < t.size(); ++i) t[i] = p.time_of(sigmas[i]);
  const Tensor y = x * (std::isinf(sigmas[0]) ? p.sigma(t[0]) : p.alpha(t[0]));
  const Tensor y_n = run(solver, den, y, t, opt, [&](int i, const Tensor& y_i) {
    on_step(i, y_i / p.alpha(t[static_cast<size_t>(i) + 1]));
  });
  return y_n / p.alpha(t.back());
}

}  // namespace

Tensor solve(const SolverInfo& solver, Denoiser& den, Tensor x, const Grid& grid, SolverOptions opt,
             const StepCallback& on_step) {
  if (opt.max_order == 0) opt.max_order = solver.default_max_order;
  if (opt.time) return run_in_time(solver, den, x, grid, opt, on_step);
  if (!std::isinf(grid.front())) return run(solver, den, std::move(x), grid, opt, on_step);
  // From σ̃ = ∞, x is ε: x̃ = D + (σ'/σ)(x̃ − D) → D(ε, ∞) + σ' ε; AFS takes D ≈ μ (or 0) there.
  if (!opt.afs) x = den.denoise(x, grid[0]).add_(x, grid[1]);
  else if (opt.afs_x0.defined()) x = x * grid[1] + opt.afs_x0;
  else x = x * grid[1];
  on_step(0, x);
  if (grid.size() == 2) return x;
  opt.afs = false;
  opt.afs_x0 = Tensor();
  return run(solver, den, std::move(x), Grid(grid.begin() + 1, grid.end()), opt,
             [&on_step](int i, const Tensor& xi) { on_step(i + 1, xi); });
}

}  // namespace diffode
