#pragma once
// Wall-clock seconds for timings.json, logs and records (internal to diffode::runs).
#include <chrono>

namespace diffode {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace diffode
