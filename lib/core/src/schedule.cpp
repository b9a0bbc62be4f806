#include "diffode/core/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "diffode/core/error.hpp"

namespace diffode {

namespace {

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Points a + (b - a) * (i/N) mapped through x -> x^rho, from a^(1/rho) to b^(1/rho).
Grid rho_spaced(int steps, double from, double to, double rho) {
  const double a = std::pow(from, 1.0 / rho), b = std::pow(to, 1.0 / rho);
  Grid g(steps + 1);
  for (int i = 0; i <= steps; ++i) g[i] = std::pow(a + (b - a) * i / steps, rho);
  g.front() = from;  // exact endpoints, whatever pow's rounding
  g.back() = to;
  return g;
}

// Karras et al. 2022 (EDM), eq. 5: uniform in sigma^(1/rho).
Grid polynomial(int steps, const ScheduleSpec& spec, const SigmaRange& r) {
  if (std::isinf(r.sigma_max))
    throw InputError("schedule 'polynomial' needs a finite sigma_max, but the range is [" + num(r.sigma_min) +
                     ", inf] (a flow model from t = 1): set model.sigma_max or use schedule 'time_uniform'");
  return rho_spaced(steps, r.sigma_max, r.sigma_min, spec.rho.value_or(spec.schedule->default_rho));
}

// Uniform in log sigma = uniform in log-SNR (Lu et al. 2022, DPM-Solver).
Grid logsnr(int steps, const ScheduleSpec&, const SigmaRange& r) {
  if (std::isinf(r.sigma_max) || r.sigma_min <= 0)
    throw InputError("schedule 'logsnr' needs 0 < sigma_min and a finite sigma_max, but the range is [" +
                     num(r.sigma_min) + ", " + num(r.sigma_max) + "]: set model.sigma_min / model.sigma_max");
  Grid g(steps + 1);
  const double a = std::log(r.sigma_max), b = std::log(r.sigma_min);
  for (int i = 0; i <= steps; ++i) g[i] = std::exp(a + (b - a) * i / steps);
  g.front() = r.sigma_max;
  g.back() = r.sigma_min;
  return g;
}

// Uniform in the time t^(1/rho) of process `p`, mapped through its sigma_tilde(t).
Grid time_spaced(int steps, const Process& p, double rho, const SigmaRange& r) {
  for (double s : {r.sigma_max, r.sigma_min})
    if (std::isnan(p.time_of(s)))
      throw InputError("a time-spaced schedule needs the process's time at sigma " + num(s) + ", which process '" +
                       p.name() + "' does not reach (from " + p.sigma_span() +
                       "): set model.sigma_min / model.sigma_max inside, or "
                       "use 'trailing' for a grid to 0");
  const Grid t = rho_spaced(steps, p.time_of(r.sigma_max), p.time_of(r.sigma_min), rho);
  Grid g(steps + 1);
  for (int i = 0; i <= steps; ++i) g[i] = p.sigma_tilde(t[i]);
  g.front() = r.sigma_max;
  g.back() = r.sigma_min;
  return g;
}

// Uniform in the model's own time (t^(1/rho) uniform), mapped through sigma_tilde(t).
Grid time_uniform(int steps, const ScheduleSpec& spec, const SigmaRange& r) {
  return time_spaced(steps, r.process, spec.rho.value_or(spec.schedule->default_rho), r);
}

// Uniform in the time of a VP process with linear beta (beta_min, beta_max), whatever the
// model's process: the time grid of the AMED paper's settings (Zhou et al. 2024).
Grid vp_time(int steps, const ScheduleSpec& spec, const SigmaRange& r) {
  if (std::isinf(r.sigma_max))
    throw InputError("schedule 'vp_time' needs a finite sigma_max, but the range is [" + num(r.sigma_min) +
                     ", inf] (a flow model from t = 1): set model.sigma_max or use schedule 'time_uniform'");
  if (!(spec.beta_min > 0 && spec.beta_max > spec.beta_min))
    throw InputError("schedule 'vp_time' needs 0 < beta_min < beta_max, got beta_min " + num(spec.beta_min) +
                     ", beta_max " + num(spec.beta_max));
  return time_spaced(steps, Process::vp(spec.beta_min, spec.beta_max), 1.0, r);
}

// The trained timesteps of a discrete process that diffusers' `timestep_spacing` picks
// (largest first), as σ̃ at each, then σ = 0 (as its Euler-type schedulers end).
Grid timestep_grid(const char* name, int steps, const std::vector<double>& timesteps, const SigmaRange& r) {
  const double last = static_cast<double>(r.process.timesteps() - 1);
  Grid g;
  for (double t : timesteps) {
    if (!(t >= 0 && t <= last))
      throw InputError("schedule '" + std::string(name) + "' at " + std::to_string(steps) + " steps picks timestep " +
                       num(t) + ", outside the trained 0 .. " + num(last) + " (lower schedule.offset)");
    g.push_back(r.process.sigma_tilde(t));
  }
  g.push_back(0.0);
  return g;
}

const Process& discrete_process(const char* name, int steps, const SigmaRange& r) {
  if (r.process.timesteps() == 0)
    throw InputError("schedule '" + std::string(name) + "' spaces the trained timesteps of a discrete process, "
                     "but the model's process is '" + r.process.name() + "': use time_uniform");
  if (steps > r.process.timesteps())
    throw InputError("schedule '" + std::string(name) + "' cannot pick " + std::to_string(steps) +
                     " distinct timesteps of the " + std::to_string(r.process.timesteps()) + " trained ones");
  return r.process;
}

// diffusers' "linspace" of its DDIM/DDPM/PNDM schedulers: np.linspace(0, T−1, N).round(),
// largest first, in numpy's arithmetic (k·step, the last one exact; round half to even).
Grid linspace_timesteps(int steps, const ScheduleSpec&, const SigmaRange& r) {
  const double last = static_cast<double>(discrete_process("linspace", steps, r).timesteps() - 1);
  const double step = steps > 1 ? last / (steps - 1) : 0.0;
  std::vector<double> t;
  for (int k = steps - 1; k >= 0; --k) t.push_back(k == steps - 1 && steps > 1 ? last : std::nearbyint(k * step));
  return timestep_grid("linspace", steps, t, r);
}

// diffusers' "leading": k·⌊T/N⌋ + offset, k = N−1 … 0 (Stable Diffusion 1.x–2.x: offset 1).
Grid leading_timesteps(int steps, const ScheduleSpec& spec, const SigmaRange& r) {
  const int64_t ratio = discrete_process("leading", steps, r).timesteps() / steps;
  std::vector<double> t;
  for (int k = steps - 1; k >= 0; --k) t.push_back(static_cast<double>(k * ratio + spec.offset));
  return timestep_grid("leading", steps, t, r);
}

// diffusers' "trailing": np.round(np.arange(T, 0, −T/N)) − 1, starting at the last timestep,
// in numpy's arithmetic (arange steps by (T − T/N) − T). N values: where numpy's arange
// returns N + 1 (its length rounds up) diffusers' last timestep is −1; that one is not taken.
Grid trailing_timesteps(int steps, const ScheduleSpec&, const SigmaRange& r) {
  const double n = static_cast<double>(discrete_process("trailing", steps, r).timesteps());
  const double delta = (n + -(n / steps)) - n;
  std::vector<double> t;
  for (int k = 0; k < steps; ++k) t.push_back(std::nearbyint(n + k * delta) - 1);
  return timestep_grid("trailing", steps, t, r);
}

Grid custom(int steps, const ScheduleSpec& spec, const SigmaRange&) {
  if (static_cast<int>(spec.sigmas.size()) != steps + 1)
    throw InputError("schedule '" + spec.schedule->name + "' lists " + std::to_string(spec.sigmas.size()) + " sigmas (" +
                     std::to_string(spec.sigmas.size() - 1) + " steps), but " + std::to_string(steps) +
                     " steps were asked for");
  return spec.sigmas;
}

}  // namespace

const std::vector<ScheduleInfo>& schedules() {
  static const std::vector<ScheduleInfo> s = {
      {"polynomial", "uniform in sigma^(1/rho) (Karras et al. 2022, EDM; rho default 7)", {"rho", "sigma_min"}, 7.0,
       polynomial},
      {"logsnr", "uniform in log sigma, i.e. in log-SNR (Lu et al. 2022)", {"sigma_min"}, 0.0, logsnr},
      {"time_uniform", "uniform in the model's own time t^(1/rho), mapped through sigma(t) (rho default 1)",
       {"rho", "sigma_min"}, 1.0, time_uniform},
      {"vp_time",
       "uniform in the time of a VP process with linear beta (beta_min 0.1, beta_max 20 by default), mapped "
       "through its sigma(t), whatever the model's process",
       {"beta_min", "beta_max", "sigma_min"}, 0.0, vp_time},
      {"linspace", "discrete processes: the timesteps round(linspace(0, T-1, N)), then sigma 0 (diffusers' "
       "timestep_spacing \"linspace\")", {}, 0.0, linspace_timesteps},
      {"leading", "discrete processes: the timesteps k*floor(T/N) + offset, then sigma 0 (diffusers' \"leading\"; "
       "offset = steps_offset, 1 for Stable Diffusion 1.x-2.x)", {"offset"}, 0.0, leading_timesteps},
      {"trailing", "discrete processes: the timesteps round(T - k*T/N) - 1 from T-1 down, then sigma 0 (diffusers' "
       "\"trailing\")", {}, 0.0, trailing_timesteps},
      {"custom", "an explicit decreasing list `sigmas` (its length fixes the steps)", {"sigmas"}, 0.0, custom},
      {"tuned", "the grid `diffode tune` found for one model, solver and NFE (file `path`; its length fixes the steps)",
       {"path"}, 0.0, custom, false},
  };
  return s;
}

bool ScheduleInfo::takes(const std::string& key) const {
  return std::find(params.begin(), params.end(), key) != params.end();
}

std::vector<std::string> schedule_names() {
  std::vector<std::string> out;
  for (const auto& s : schedules()) out.push_back(s.name);
  return out;
}

const ScheduleInfo& find_schedule(const std::string& name) {
  for (const auto& s : schedules())
    if (s.name == name) return s;
  throw InputError(unknown_name_message("schedule", name, schedule_names()));
}

std::optional<int> fixed_steps(const ScheduleSpec& spec) {
  if (spec.schedule->fn == custom && !spec.sigmas.empty()) return static_cast<int>(spec.sigmas.size()) - 1;
  return std::nullopt;
}

nlohmann::json grid_json(const Grid& g) {
  nlohmann::json out = nlohmann::json::array();
  for (double s : g) out.push_back(std::isinf(s) ? nlohmann::json("inf") : nlohmann::json(s));
  return out;
}

nlohmann::json schedule_json(const ScheduleSpec& spec) {
  nlohmann::json out = {{"name", spec.schedule->name}};
  if (spec.rho) out["rho"] = *spec.rho;
  if (spec.schedule->takes("beta_min")) {
    out["beta_min"] = spec.beta_min;
    out["beta_max"] = spec.beta_max;
  }
  return out;
}

bool picks_timesteps(const ScheduleSpec& spec) {
  return spec.schedule->fn == linspace_timesteps || spec.schedule->fn == leading_timesteps ||
         spec.schedule->fn == trailing_timesteps;
}

Grid make_grid(const ScheduleSpec& spec, int steps, const SigmaRange& range) {
  if (steps < 1) throw InputError("steps must be >= 1, got " + std::to_string(steps));
  const double shift = range.process.shift();
  Grid g;
  if (shift == 1.0 || !spec.schedule->shifted) {
    g = spec.schedule->fn(steps, spec, range);
  } else {  // σ' = s·σ: the flow shift t' = s t / (1 + (s − 1) t) (Esser et al. 2024) written in σ̃
    SigmaRange unshifted = range;
    unshifted.sigma_min /= shift;
    unshifted.sigma_max /= shift;
    g = spec.schedule->fn(steps, spec, unshifted);
    for (double& v : g) v *= shift;
    if (spec.schedule->fn != custom) {
      g.front() = range.sigma_max;
      g.back() = range.sigma_min;
    }
  }
  for (size_t i = 1; i < g.size(); ++i)
    if (!(g[i] < g[i - 1]) || g[i] < 0)
      throw InputError("schedule '" + spec.schedule->name + "' gave a grid that does not strictly decrease at step " +
                       std::to_string(i) + " (" + num(g[i - 1]) + " -> " + num(g[i]) +
                       "): use fewer steps or a wider sigma range");
  return g;
}

bool same_sigma(double a, double b) {
  return a == b || (std::isfinite(a) && std::isfinite(b) && std::abs(a - b) <= 1e-9 * std::abs(b));
}

bool passes_through(const Grid& fine, const Grid& g) {
  if (g.size() < 2 || fine.size() < g.size() || (fine.size() - 1) % (g.size() - 1) != 0) return false;
  const size_t per = (fine.size() - 1) / (g.size() - 1);
  for (size_t i = 0; i < g.size(); ++i)
    if (!same_sigma(fine[i * per], g[i])) return false;
  return true;
}

namespace {

// The schedule itself at N·(m+1) steps with g's points in it, when it passes through them.
std::optional<Grid> schedule_refinement(const Grid& g, int m, const ScheduleSpec& spec, const SigmaRange& range) {
  if (fixed_steps(spec)) return std::nullopt;
  const int n = static_cast<int>(g.size()) - 1;
  Grid fine = make_grid(spec, n * (m + 1), range);
  if (!passes_through(fine, g)) return std::nullopt;
  for (int i = 0; i <= n; ++i) fine[static_cast<size_t>(i * (m + 1))] = g[static_cast<size_t>(i)];
  return fine;
}

}  // namespace

Grid refine_grid(const Grid& g, int m, const ScheduleSpec& spec, const SigmaRange& range, Inside inside) {
  const int n = static_cast<int>(g.size()) - 1;
  // Points inside an interval into σ = 0: linear, or on a discrete process (no time below
  // its table) geometric towards the table's smallest sigma.
  const double table_min = range.process.timesteps() > 0 ? range.process.sigma_tilde(range.process.t_min()) : 0.0;
  auto to_zero = [table_min](double a, double u) {
    return table_min > 0 && a > table_min ? a * std::pow(table_min / a, u) : a * (1 - u);
  };
  const std::optional<Grid> own = schedule_refinement(g, m, spec, range);
  Grid fine;
  for (int i = 0; i < n; ++i) {
    const double a = g[static_cast<size_t>(i)], b = g[static_cast<size_t>(i) + 1];
    const bool geometric = inside == Inside::geometric && !std::isinf(a) && b > 0;
    if (!geometric && !own && std::isinf(a))
      throw InputError("cannot place teacher points between sigma inf and " + std::to_string(b) + " on schedule '" +
                       spec.schedule->name + "': use a schedule given by a formula (e.g. time_uniform)");
    fine.push_back(a);
    for (int k = 1; k <= m; ++k) {
      const double u = static_cast<double>(k) / (m + 1);
      if (geometric || (!own && b > 0))
        fine.push_back(a * std::pow(b / a, u));
      else
        fine.push_back(own ? (*own)[static_cast<size_t>(i * (m + 1) + k)] : to_zero(a, u));
    }
  }
  fine.push_back(g.back());
  return fine;
}

}  // namespace diffode
