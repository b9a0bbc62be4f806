// The loop around every solver: AFS on the first grid point and the last interval into σ = 0.
#include <ATen/ATen.h>

#include <cmath>

#include "solvers/solvers.hpp"

namespace diffode {

Tensor GridEval::d(const Tensor& x, int i) const {
  if (analytic(i)) return x / std::sqrt(1.0 + sigmas_[0] * sigmas_[0]);
  return velocity(den_, x, sigmas_[static_cast<size_t>(i)]);
}

Tensor GridEval::x0(const Tensor& x, int i) const {
  if (analytic(i)) return x - sigmas_[0] * d(x, 0);
  return den_.denoise(x, sigmas_[static_cast<size_t>(i)]);
}

GridEval::Point GridEval::point(const Tensor& x, int i) const {
  const double t_cur = sigmas_[static_cast<size_t>(i)];
  if (analytic(i)) {
    const Tensor d0 = d(x, 0);
    return {d0, x - d0 * t_cur, at::zeros({x.size(0), den_.feature_dim()}, x.options())};
  }
  Denoised e = den_.denoise_with_feature(x, t_cur);
  return {(x - e.x0) / t_cur, e.x0, e.feature};
}

Tensor solve(const SolverInfo& solver, Denoiser& den, Tensor x, const Grid& grid, SolverOptions opt,
             const StepCallback& on_step) {
  const int n = solver_impl::num_steps(grid);
  const bool loop_takes_last = grid.back() == 0 && solver.to_zero != ToZero::own;
  if (opt.max_order == 0) opt.max_order = solver.default_max_order;
  GridEval ev(den, grid, opt.afs, loop_takes_last ? n - 1 : n);
  x = solver.fn(ev, std::move(x), opt, on_step);
  if (!loop_takes_last) return x;
  const double t_cur = grid[static_cast<size_t>(n - 1)];
  x = solver.to_zero == ToZero::denoised ? ev.x0(x, n - 1) : x + ev.d(x, n - 1) * (0.0 - t_cur);
  on_step(n - 1, x);
  return x;
}

}  // namespace diffode
