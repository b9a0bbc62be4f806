#pragma once
// The file `diffode tune` writes, read and checked here only: its grid, and whether it was
// tuned for the run that uses it.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "diffode/core/grid.hpp"
#include "diffode/runs/config.hpp"

namespace diffode {

// A tuned grid file: its record as written and its sigmas (the first may be inf).
struct TunedGrid {
  nlohmann::json record;
  Grid sigmas;
};
// InputError naming the file when it cannot be read, is not a tuned grid (kind
// "diffode_tuned_grid" with at least two sigmas) or its sigmas do not strictly decrease.
TunedGrid read_tuned_grid(const std::filesystem::path& path);

// What a tuned grid is used with.
struct TunedUse {
  std::string model_sha256;
  std::string solver;
  int nfe = 0;
  nlohmann::json afs;  // false, true or "mean"
  std::string space;
  nlohmann::json max_order;  // tuned_max_order
};
// The order cap a solver runs with (max_order, else its default); null where it has none.
nlohmann::json tuned_max_order(const SolverConfig& s);
// InputError naming the file and every difference (model, solver, max_order, NFE, AFS, space).
void check_tuned(const nlohmann::json& record, const std::filesystem::path& file, const TunedUse& use);

}  // namespace diffode
