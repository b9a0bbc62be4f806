#pragma once
// AMED step predictors (DESIGN.md §4): the TorchScript predictor file, its metadata and
// checks (`diffode distill`, distill.hpp, trains one).
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffode/core/grid.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"

namespace diffode {

// g_φ as published: sinusoidal embeddings (dim 8) of log σ_i and log σ_{i+1} through one
// shared Linear(8,8)+SiLU; the feature through Linear(F,128)+SiLU+Linear(128,4); the
// concatenation (20) into sigmoid heads for r, c ∈ [1 − scale_dir, 1 + scale_dir] and
// a ∈ [1 − scale_time, 1 + scale_time]. Stored as a TorchScript module
// forward(feature [B,F], sigma_cur [B], sigma_next [B]) -> [B, 3] (r, c, a) with
// metadata in `diffode_predictor.json`.
class AmedPredictor final : public StepPredictor {
 public:
  // A new predictor whose heads start at zero: r = ½, c = a = 1 (DPM-Solver-2's midpoint).
  static AmedPredictor create(int64_t feature_dim, double scale_dir, double scale_time, uint64_t seed);
  // Loads a predictor file; InputError naming the file when it is missing or not one.
  static AmedPredictor load(const std::filesystem::path& path);

  MeanValueStep predict(const Tensor& feature, double sigma_cur, double sigma_next) const override;

  // The predictor file: a TorchScript archive with its metadata (write it whole, e.g. with
  // io's write_file_atomic).
  std::string archive_bytes() const;
  std::vector<Tensor> parameters() const;
  int64_t feature_dim() const;
  const nlohmann::json& metadata() const;
  void set_metadata(nlohmann::json meta);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// What a predictor is used with; `check_predictor` compares it with the metadata.
struct PredictorUse {
  std::string model_sha256;
  std::string solver;
  int steps = 0;
  nlohmann::json afs = false;  // as solver.afs is written: false, true or "mean"
  Grid grid;
  int64_t feature_dim = 0;
  std::string space = "sigma";  // the variable integrated in (solver.space)
  std::string last_interval = "base";  // solver.last_interval: "base" or "learned"
};

// The metadata a predictor for `use` carries (plus what distillation adds).
nlohmann::json predictor_identity(const PredictorUse& use, const ScheduleSpec& schedule);

// InputError naming the file and every mismatch (model, solver, steps, AFS, space, grid,
// last interval); a predictor that records no space was distilled in sigma, one that
// records no last interval with the base rule.
void check_predictor(const AmedPredictor& p, const std::filesystem::path& file, const PredictorUse& use);

}  // namespace diffode
