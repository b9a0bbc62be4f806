#pragma once
// `diffode compare` (DESIGN.md §8): every compare.solvers × compare.nfe cell sampled on the
// same seeds and measured against one reference solution; the result typed row by row, so
// that compare.json, compare.csv and the CLI's tables are views of the same values.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "diffode/runs/config.hpp"
#include "diffode/runs/run.hpp"

namespace diffode {

// One row of a comparison: a compared solver at one target NFE.
struct CompareRow {
  enum class Status {
    ok,           // sampled (or kept from cells/) and measured
    unreachable,  // no NFE <= the target is reachable: nothing sampled; the note says why
    diverged,     // the model returned NaN/Inf on the cell's grid: no errors; the note says where
  };
  std::string label;
  int target_nfe = 0;
  Status status = Status::ok;
  // What was sampled: the solver at the largest reachable NFE <= the target (none: unreachable).
  std::optional<std::string> solver;
  std::optional<int> nfe, steps;
  nlohmann::json afs;                   // false, true or "mean" (null: unreachable)
  std::optional<std::string> space;     // "sigma" or "time"
  std::optional<std::string> schedule;  // the grid's schedule name
  // Against the reference, when measured; psnr none when equal, frechet_distance without `eval`.
  std::optional<double> rmse, max_err, psnr, frechet_distance;
  std::optional<double> time_s;          // sampling wall time (none: unreachable)
  std::optional<std::string> predictor;  // an AMED solver's step predictor (measured rows)
  std::string note;                      // the fallback NFE, why unreachable, or "diverged: ..."; "" none
};
// The row of compare.json: every field, null when unset (predictor only when set, note only
// when there is one or the row was not measured).
nlohmann::json to_json(const CompareRow& row);

// The reference solution as computed (and cached): `solver` at `steps`, and its distance to
// the same solver at half the steps.
struct ReferenceInfo {
  std::string solver;
  int steps = 0;
  int nfe = 0;
  double seconds = 0;  // sampling time when it was computed
  struct Convergence {
    int half_steps = 0;
    int half_nfe = 0;
    double rmse = 0;
    double max_err = 0;
  } convergence;
};

// A comparison: compare.json as values.
struct CompareResult {
  nlohmann::json config;  // to_json(Config): the compared config, resolved
  std::string model_path;
  std::string model_sha256;
  struct Seeds {
    int64_t first = 0;
    int64_t count = 0;
  } seeds;
  ReferenceInfo reference;
  std::string reference_cache;                         // the reference's cache file
  std::optional<double> reference_frechet_distance;  // with `eval`
  int threads = 0;
  std::vector<CompareRow> rows;  // solver by solver, each at every target NFE
};
// compare.json.
nlohmann::json to_json(const CompareResult& result);

// `diffode compare`: each compare.solvers × compare.nfe cell sampled on the same seeds and
// measured against a reference solution (cached by model, seeds and reference settings;
// refused when it moves more than its tolerance from half as many steps). Writes
// compare.json, compare.csv, compare_grid.png, error_vs_nfe.svg/.png and keeps each measured
// cell in cells/ for a re-run.
CompareResult run_compare(const Config& cfg, const std::filesystem::path& out_dir, const RunOptions& opt = {});

}  // namespace diffode
