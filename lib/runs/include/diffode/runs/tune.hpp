#pragma once
// `diffode tune` (DESIGN.md §3): the σ grid for one model, solver and NFE, chosen among the
// points of a fine candidate grid by dynamic programming over the local error of one DDIM
// step against teacher trajectories (after GITS: Chen et al., ICML 2024, "On the Trajectory
// Regularity of ODE-based Diffusion Sampling").
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffode/runs/config.hpp"

namespace diffode {

// cost[i][j] (i < j): the mean error of one step from candidate i to candidate j. The
// indices 0 = p_0 < p_1 < ... < p_steps = K (K = cost.size() - 1) of least total cost.
// InputError when steps is not in [1, K].
std::vector<int> cheapest_path(const std::vector<std::vector<double>>& cost, int steps);

// Reports teacher trajectories done out of the total (0 of 0 when the costs come from the cache).
using TuneProgressFn = std::function<void(int64_t done, int64_t total)>;

// `diffode tune`: tunes the grid of cfg's solver at its nfe (or steps) on cfg's model, over the
// candidates of cfg's schedule at tune.points steps, and writes the grid file to `out` (never
// over a file that is not one). Returns the file's record.
nlohmann::json run_tune(const Config& cfg, const std::filesystem::path& out, const TuneProgressFn& progress = nullptr);

}  // namespace diffode
