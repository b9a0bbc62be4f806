#pragma once
// The schedule registry: name -> pure function (steps, parameters, range) -> sigma grid.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "diffode/core/process.hpp"
#include "diffode/core/grid.hpp"

namespace diffode {

struct ScheduleInfo;
// Throws InputError naming the valid schedules (and the closest one) for an unknown name.
const ScheduleInfo& find_schedule(const std::string& name);

// A schedule from the registry with its parameters.
struct ScheduleSpec {
  const ScheduleInfo* schedule = &find_schedule("polynomial");
  std::optional<double> rho;   // polynomial, time_uniform; unset: the schedule's default
  std::vector<double> sigmas;  // custom
  double beta_min = 0.1;       // vp_time: the linear beta of the VP process whose time is spaced
  double beta_max = 20.0;      // uniformly (the AMED paper's settings)
  int offset = 0;              // leading: added to every timestep (diffusers' steps_offset)
};

// The sigma_tilde range a schedule spans and the process (for time-based schedules).
struct SigmaRange {
  double sigma_min;
  double sigma_max;  // may be +inf for a flow model sampled from t = 1
  Process process;
};

struct ScheduleInfo {
  std::string name;
  std::string description;
  std::vector<std::string> params;  // config keys of `schedule` this one takes
  double default_rho;               // for schedules that take rho
  Grid (*fn)(int steps, const ScheduleSpec& spec, const SigmaRange& range);
  bool shifted = true;  // a flow shift applies (not to a tuned grid: it was found shifted)

  bool takes(const std::string& key) const;  // `key` is one of params
};

const std::vector<ScheduleInfo>& schedules();
std::vector<std::string> schedule_names();
// The grid for `steps` intervals (N+1 points, decreasing, first sigma_max, last sigma_min;
// the timestep spacings: the trained timesteps they pick, then 0). With a flow shift s ≠ 1,
// s·(the schedule's grid on [sigma_min/s, sigma_max/s]): the same ends, σ' = s·σ inside.
// Throws InputError when the schedule cannot span the range (e.g. logsnr to sigma 0).
Grid make_grid(const ScheduleSpec& spec, int steps, const SigmaRange& range);

// Whether two computations of one grid point agree: equal, or finite and within 1e-9
// relative (σ = ∞ is only itself).
bool same_sigma(double a, double b);

// Whether `fine` passes through every point of `g`: N intervals of g, N·p of fine, and
// fine's point i·p is g's point i (same_sigma).
bool passes_through(const Grid& fine, const Grid& g);

// Where refine_grid puts the points inside an interval between two positive σ's.
enum class Inside {
  schedule,   // as into 0 and from ∞ (below)
  geometric,  // always σ_i·(σ_{i+1}/σ_i)^{k/(m+1)}: distillation's teacher points (DESIGN.md §4)
};

// `g` with m extra points in each interval (tune's teacher, distillation's teacher): the
// schedule itself at N·(m+1) steps when that passes through g's points, else geometric
// insertion σ_i·(σ_{i+1}/σ_i)^{k/(m+1)} (into σ = 0: linear, or on a discrete process
// geometric towards its table's smallest σ); with Inside::geometric, geometric inside
// every interval between positive σ's whatever the schedule. InputError for an interval
// from σ = inf that the schedule cannot refine.
Grid refine_grid(const Grid& g, int m, const ScheduleSpec& spec, const SigmaRange& range,
                 Inside inside = Inside::schedule);

// A schedule that fixes the number of steps itself (custom, tuned): that number.
std::optional<int> fixed_steps(const ScheduleSpec& spec);

// A grid as records write it: its sigmas, "inf" for an infinite first point.
nlohmann::json grid_json(const Grid& g);

// A schedule as records name it: {"name", and the parameters that shaped the grid: "rho",
// "beta_min", "beta_max" where the schedule takes them}.
nlohmann::json schedule_json(const ScheduleSpec& spec);

// Whether the schedule picks trained timesteps of a discrete process (linspace, leading,
// trailing) rather than points of a formula.
bool picks_timesteps(const ScheduleSpec& spec);

}  // namespace diffode
