// AMED (Zhou, Chen, Wang, Chen 2024, "Fast ODE-based Sampling for Diffusion Models in
// Around 5 Steps"): by the mean value theorem the exact step ∫ v dσ over [σ_i, σ_{i+1}] is
// h·v(x(s), s) for some s inside; a small predictor g_φ reads the model's bottleneck
// feature at (x_i, σ_i) and gives s = σ_{i+1}^r σ_i^{1−r}, a direction scale c and a time
// scale a. AMED-Solver takes one such step per interval; AMED-Plugin inserts s as an
// extra point into a base solver. Every quantity that depends on the prediction is
// per sample ([B]) and differentiable, so the same code runs sampling and distillation.
// A step to σ = 0 has no geometric interior point: the loop takes it as the base solver's
// last step (ToZero), or the solver takes it as its own (the iPNDM plugin), unless
// opt.learned_last puts a learned point at s = (1 − r)·σ_i there too.
#include <ATen/ATen.h>

#include <cmath>
#include <deque>
#include <stdexcept>

#include "solvers/solvers.hpp"

namespace diffode::solver_impl {

namespace {

const StepPredictor& predictor_of(const SolverOptions& opt) {
  if (!opt.predictor) throw std::logic_error("an AMED solver was called without a step predictor");
  return *opt.predictor;
}

// The predicted mean-value point of one interval: s [B] (geometric interpolation by r; into
// σ = 0, a learned last interval, linear: s = (1 − r)·σ_i), and r, c, a [B], all in x's
// dtype. The predictor sees an interval into 0 as (σ_i, σ_i), there being no log 0.
struct Point {
  Tensor s, r, c, a;
};
Point mean_value_point(const SolverOptions& opt, const Tensor& feature, double t_cur, double t_next,
                       const Tensor& x) {
  const MeanValueStep m = predictor_of(opt).predict(feature, t_cur, t_next == 0 ? t_cur : t_next);
  const auto dt = x.scalar_type();
  const Tensor r = m.r.to(dt);
  const Tensor s = t_next == 0 ? (1.0 - r) * t_cur : at::exp(r * std::log(t_next) + (1.0 - r) * std::log(t_cur));
  return {s, r, m.c.to(dt), m.a.to(dt)};
}

// d_s: the derivative at the mean-value point s, the model called at the time-scaled a·s
// (in σ̃: (x_s − D(x_s, a·s)) / s).
Tensor velocity_at(const GridEval& ev, const Tensor& x_s, const Point& p) {
  return ev.d_at(x_s, p.s, p.a * p.s);
}

// One interval of the single-step family, the model evaluated at its mean-value point:
// x_s = x + (s − σ_i) d_i and d_s there.
struct Interval {
  const Tensor &x, &x_s, &d_cur, &d_s;
  const Point& p;
  double t_cur, t_next;
};
using IntervalRule = Tensor (*)(const Interval& k);

// AMED-Solver: x_{i+1} = x_i + c·h·d_s.
Tensor amed_rule(const Interval& k) { return k.x + k.d_s * per_sample(k.p.c * (k.t_next - k.t_cur), k.x); }

// AMED-Plugin on Euler: Euler to s, then Euler from s with d_s scaled by c.
Tensor euler_plugin_rule(const Interval& k) {
  return k.x_s + k.d_s * per_sample(k.p.c * (k.t_next - k.p.s), k.x_s);
}

// AMED-Plugin on DPM-Solver-2: x + c·h·(d_s/(2r) + (1 − 1/(2r))·d_i); r = ½ is DPM-Solver-2.
// Into σ = 0 r is s's linear fraction of the interval, the same second-order rule.
Tensor dpm2_plugin_rule(const Interval& k) {
  const Tensor w = per_sample(0.5 / k.p.r, k.x);
  return k.x + (k.d_s * w + k.d_cur * (1.0 - w)) * per_sample(k.p.c * (k.t_next - k.t_cur), k.x);
}

// The single-step family: x_s, d_s, then `rule` gives x_{i+1}.
template <IntervalRule rule>
Tensor single_step(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  const Grid& sigmas = ev.grid();
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1];
    const GridEval::Point st = ev.point(x, i);
    const Point p = mean_value_point(opt, st.feature, t_cur, t_next, x);
    const Tensor x_s = x + st.d * per_sample(p.s - t_cur, x);
    const Tensor d_s = velocity_at(ev, x_s, p);
    x = rule({x, x_s, st.d, d_s, p, t_cur, t_next});
    on_step(i, x);
  }
  return x;
}

// Σ_j w_j d_j over the newest `order` entries of the history (iPNDM's fixed weights).
Tensor adams_bashforth_sum(const std::deque<Tensor>& d_hist, int max_order) {
  const int order = std::min<int>(max_order, static_cast<int>(d_hist.size()));
  const std::vector<double>& w = ipndm_weights(order);
  Tensor sum = d_hist[0] * w[0];
  for (int j = 1; j < order; ++j) sum = sum + d_hist[j] * w[j];
  return sum;
}

}  // namespace

Tensor amed(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  return single_step<amed_rule>(ev, std::move(x), opt, on_step);
}

Tensor amed_euler(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  return single_step<euler_plugin_rule>(ev, std::move(x), opt, on_step);
}

Tensor amed_dpm2(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  return single_step<dpm2_plugin_rule>(ev, std::move(x), opt, on_step);
}

// AMED-Plugin on iPNDM: two Adams–Bashforth sub-steps, σ_i → s → σ_{i+1}, over one
// history of d's that holds the mean-value points too; the second scaled by c. Its step into
// σ = 0 is one Adams–Bashforth step over that history (no interior point to learn there).
Tensor amed_ipndm(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  const Grid& sigmas = ev.grid();
  const int max_order = opt.max_order;
  std::deque<Tensor> d_hist;  // newest first
  auto push = [&](const Tensor& d) {
    d_hist.push_front(d);
    if (static_cast<int>(d_hist.size()) > max_order) d_hist.pop_back();
  };
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1];
    const GridEval::Point st = ev.point(x, i);
    push(st.d);
    if (t_next == 0 && !opt.learned_last) {
      x = x + adams_bashforth_sum(d_hist, max_order) * (t_next - t_cur);
    } else {
      const Point p = mean_value_point(opt, st.feature, t_cur, t_next, x);
      const Tensor x_s = x + adams_bashforth_sum(d_hist, max_order) * per_sample(p.s - t_cur, x);
      push(velocity_at(ev, x_s, p));
      x = x_s + adams_bashforth_sum(d_hist, max_order) * per_sample(p.c * (t_next - p.s), x);
    }
    on_step(i, x);
  }
  return x;
}

// AMED-Plugin on DPM-Solver++(2M): two multistep sub-steps in λ, σ_i → s → σ_{i+1}, over one
// history of data predictions that holds the mean-value points too; the second sub-step's
// increment scaled by c. Orders follow DPM-Solver++(2M) on the refined grid (with the loop's
// last interval into σ = 0, as D, counted in it).
Tensor amed_dpmpp2m(GridEval& ev, Tensor x, const SolverOptions& opt, const StepCallback& on_step) {
  const Grid& sigmas = ev.grid();
  const int n = num_steps(sigmas);
  const int n_refined = 2 * n - (sigmas.back() == 0 && !opt.learned_last ? 1 : 0);
  Tensor m_prev, h_prev;  // data prediction at the previous point and the λ step from it, per sample
  for (int i = 0; i < ev.steps(); ++i) {
    const double t_cur = sigmas[i], t_next = sigmas[i + 1];
    const GridEval::Point st = ev.point(x, i);
    const Point p = mean_value_point(opt, st.feature, t_cur, t_next, x);
    const Tensor s = per_sample(p.s, x), cur = at::full_like(s, t_cur), next = at::full_like(s, t_next);
    const Tensor x_s = dpmpp_step(x, st.x0, m_prev, cur, s, h_prev, dpmpp_step_order(2 * i, n_refined, 2, /* s > 0 */ t_cur));
    const Tensor m_s = ev.den().denoise(x_s, p.a * p.s);
    // into σ = 0 (a learned last interval) the step is D itself, written so (λ = ∞ there)
    const Tensor x_b = t_next == 0 ? m_s
                                   : dpmpp_step(x_s, m_s, st.x0, s, next, at::log(cur / s),
                                                dpmpp_step_order(2 * i + 1, n_refined, 2, t_next));
    x = x_s + (x_b - x_s) * per_sample(p.c, x);
    m_prev = m_s;
    h_prev = at::log(s / next);
    on_step(i, x);
  }
  return x;
}

}  // namespace diffode::solver_impl
