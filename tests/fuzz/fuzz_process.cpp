// Fuzz target: a model's `process` metadata (JSON) through Process::from_json, then the
// process's closed forms and every schedule on its default range: a process that parses must
// give finite or explicitly refused grids, never undefined behaviour (NaN cast to an index)
// or another exception.
#include <ATen/ATen.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/core/process.hpp"
#include "diffode/core/schedule.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  diffode::Process p = diffode::Process::vp(0.1, 20.0);
  try {
    p = diffode::Process::from_json(diffode::parse_json_text(text, "fuzz"), "fuzz/process");
  } catch (const diffode::InputError&) {
    return 0;
  }
  const double lo = p.sigma_tilde(p.t_min()), hi = p.sigma_tilde(p.t_max());
  for (double t : {p.t_min(), 0.5 * (p.t_min() + p.t_max()), p.t_max(), std::nan(""), -1.0, 1e300}) {
    (void)p.alpha(t);
    (void)p.dsigma(t);
    (void)p.network_time(t);
  }
  for (double s : {lo, hi, 0.0, std::nan(""), 1e-300, 1e300}) (void)p.time_of(s);
  (void)p.time_of(at::tensor({lo, 0.5 * (lo + hi), hi, 0.0, 1e300}, at::kDouble));
  (void)p.to_json().dump();
  for (const auto& info : diffode::schedules()) {
    if (info.name == "custom" || info.name == "tuned") continue;
    diffode::ScheduleSpec spec;
    spec.schedule = &info;
    for (int steps : {1, 3, 17}) {
      try {
        const diffode::Grid g = diffode::make_grid(spec, steps, {lo, hi, p});
        for (double s : g)
          if (std::isnan(s)) __builtin_trap();  // make_grid refuses what does not strictly decrease
      } catch (const diffode::InputError&) {
      }
    }
  }
  return 0;
}
