#pragma once
// A config made ready to sample on its model (the run layer over the core): the step plan,
// the AMED predictor, the conditioning and the evaluation, checked, and batches sampled
// from per-sample seeded noise (DESIGN.md §3, §6).
#include <ATen/core/Tensor.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "diffode/core/amed_predictor.hpp"
#include "diffode/runs/config.hpp"
#include "diffode/core/integrate.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/noise.hpp"
#include "diffode/core/quality.hpp"

namespace diffode {

// The largest finite sigma a grid may hold: the first state sigma*eps (eps ~ N(0, 1)) and
// the model's input stay far inside float32 (3.4e38).
constexpr double kMaxGridSigma = 1e30;

// The config's steps or target NFE resolved into a grid for the model (InputError naming
// the config key when the NFE cannot be hit); a tuned grid checked against model and plan.
StepPlan plan_run(const Config& cfg, const Model& model);

// The sigma range the config's schedule spans on the model: the model's, ending at
// schedule.sigma_min when that is set (ConfigError when it is outside the model's range).
SigmaRange schedule_range(const Config& cfg, const Model& model);
// Labels and guidance of cfg.sampling against what the model offers (InputError if not).
void check_conditioning(const Config& cfg, const Model& model);
// The predictor of an AMED solver (solver.predictor), checked against model and plan;
// nullopt for the other solvers.
std::optional<AmedPredictor> load_run_predictor(const Config& cfg, const Model& model, const StepPlan& plan);

// solver.afs as a plan uses it: false, true or "mean" (predictor metadata, identity).
nlohmann::json afs_json(const SolverConfig& s, const StepPlan& plan);

// AFS "mean" (DESIGN.md §4): μ_y = D(0, σ_max, y) with the run's guidance, once per run,
// per class (and the null class) when the run has labels, else one row.
struct AfsMeans {
  at::Tensor x0;           // [rows, *sample_shape] in the state dtype
  bool per_class = false;  // rows are the classes 0..C-1 (then the null class)
  nlohmann::json record;   // for the manifest: σ, rows, each row's pixel mean, sha256 of the float64 values
  at::Tensor of(const at::Tensor& labels) const;  // per sample (labels int64 [B]): [B or 1, *sample_shape]
};
AfsMeans afs_means(const Config& cfg, const Model& model, double sigma_max);

// The config's model, loaded and probed (InputError naming what is wrong).
Model load_run_model(const Config& cfg);

// A config's `eval`: its feature model and reference statistics, loaded and checked
// against each other (nullopt when the config has no `eval`).
std::optional<Evaluation> load_evaluation(const Config& cfg, const std::vector<int64_t>& sample_shape);

// The samples' labels (empty when none) under cfg.sampling for a model with num_classes.
std::vector<int64_t> run_labels(const Config& cfg, int64_t num_classes, const std::vector<int64_t>& shape,
                                int64_t first, int64_t count);

// A config ready to sample on its model: step plan, predictor and conditioning, checked.
class SampleJob {
 public:
  SampleJob(Config cfg, Model model);  // InputError when the config cannot run on the model
  // Samples first..first+count-1 of the config's seeds as one batch: float32 on the CPU,
  // [count, *sample_shape]. `on_step` runs after each solver step. InputError on NaN/Inf.
  at::Tensor sample(int64_t first, int64_t count, const std::function<void()>& on_step = nullptr) const;
  std::vector<int64_t> labels(int64_t first, int64_t count) const;
  // What determines the samples (config, model, solver, σ grid, NFE): manifest's "run".
  const nlohmann::json& identity() const { return identity_; }
  const Config& config() const { return cfg_; }
  const Model& model() const { return model_; }
  const StepPlan& plan() const { return plan_; }
  const SolverInfo& solver() const { return cfg_.solver.info(); }

 private:
  Config cfg_;
  Model model_;
  StepPlan plan_;
  std::optional<AmedPredictor> predictor_;
  std::optional<AfsMeans> afs_means_;
  nlohmann::json identity_;
};

}  // namespace diffode
