#pragma once
// From noise to samples: the integration driver shared by all solvers, NFE planning,
// per-sample seeded noise and labels, and a config made ready to sample (DESIGN.md §3, §6).
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "diffode/amed.hpp"
#include "diffode/config.hpp"
#include "diffode/model.hpp"
#include "diffode/schedule.hpp"
#include "diffode/solver.hpp"

namespace diffode {

// Integrates from noise ε (x̃ = σ_0 ε) over `grid` with `solver` and returns x̃ at σ_N
// (or x̂0 with denoise_to_zero: one more evaluation at σ_N). A grid starting at σ_0 = inf
// (flow from t = 1) takes its first interval as the exact limit of the DDIM step,
// x̃_1 = D(ε, inf) + σ_1 ε (with AFS: σ_1 ε, no evaluation), and the solver continues
// from σ_1. `on_step(i)` runs after interval i.
Tensor integrate(const SolverInfo& solver, Denoiser& den, const Tensor& eps, const Grid& grid,
                 const SolverOptions& opt, bool denoise_to_zero, const StepCallback& on_step = [](int, const Tensor&) {});

// Model evaluations per sample of that integration, counted on a stand-in denoiser.
int count_nfe(const SolverInfo& solver, const Grid& grid, const SolverOptions& opt, bool denoise_to_zero);

struct StepPlan {
  int steps;
  int nfe;
  bool afs;
  Grid grid;
};

// Resolves `steps`, or a target `nfe` (choosing N, and AFS when `afs` is unset), into a
// grid. Throws InputError naming the reachable NFEs when the target cannot be hit.
StepPlan plan_steps(const SolverInfo& solver, const ScheduleSpec& schedule, const SigmaRange& range,
                    std::optional<int> steps, std::optional<int> nfe, std::optional<bool> afs, int max_order,
                    bool denoise_to_zero);

// Noise of samples first..first+count-1, [count, *shape] float32: sample k drawn from its
// own CPU generator seeded seed + k, as torch.manual_seed(seed + k); torch.randn(shape).
Tensor make_noise(int64_t seed, int64_t first, int64_t count, const std::vector<int64_t>& shape);

// Class labels of samples first..first+count-1 under `s.labels` (DESIGN.md §6): the list,
// k mod num_classes ("cycle"), or torch.manual_seed(seed + k); torch.randn(shape);
// torch.randint(num_classes, (1,)) ("random"). Empty when no labels are asked for.
std::vector<int64_t> sample_labels(const SamplingConfig& s, int64_t num_classes, const std::vector<int64_t>& shape,
                                   int64_t first, int64_t count);

// The config's steps or target NFE resolved into a grid for the model (InputError naming
// the config key when the NFE cannot be hit).
StepPlan plan_run(const Config& cfg, const ModelMeta& meta);
// Labels and guidance of cfg.sampling against what the model offers (InputError if not).
void check_conditioning(const Config& cfg, const Model& model);
// The predictor of an AMED solver (solver.predictor), checked against model and plan;
// nullopt for the other solvers.
std::optional<AmedPredictor> load_run_predictor(const Config& cfg, const Model& model, const StepPlan& plan);

// The config's model, loaded and probed (InputError naming what is wrong).
Model load_run_model(const Config& cfg);

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
  const SolverInfo& solver() const { return *solver_; }

 private:
  Config cfg_;
  Model model_;
  const SolverInfo* solver_;
  StepPlan plan_;
  std::optional<AmedPredictor> predictor_;
  nlohmann::json identity_;
};

// Sets LibTorch's intra-op threads: n, or every core when n = 0. Returns the number set.
int set_threads(int n);

}  // namespace diffode
