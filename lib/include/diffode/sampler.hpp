#pragma once
// From noise to samples: the integration driver shared by all solvers, NFE planning,
// per-sample seeded noise, and the `sample` run with its outputs (DESIGN.md §3, §6, §8).
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

// Reports progress of a run: steps done out of total, samples done.
using ProgressFn = std::function<void(int64_t steps_done, int64_t steps_total, int64_t samples_done)>;

// The `sample` command: runs the config and writes grid.png, samples.npy, samples/<seed>.png
// and manifest.json into out_dir. Returns the manifest. A complete run of the same config
// already in out_dir is kept and returned without sampling.
nlohmann::json run_sample(const Config& cfg, const std::filesystem::path& out_dir,
                          const ProgressFn& progress = nullptr);

// The config's steps or target NFE resolved into a grid for the model (InputError naming
// the config key when the NFE cannot be hit).
StepPlan plan_run(const Config& cfg, const ModelMeta& meta);
// Labels and guidance of cfg.sampling against what the model offers (InputError if not).
void check_conditioning(const Config& cfg, const Model& model);
// The predictor of an AMED solver (solver.predictor), checked against model and plan;
// nullopt for the other solvers.
std::optional<AmedPredictor> load_run_predictor(const Config& cfg, const Model& model, const StepPlan& plan);

// Sets LibTorch's intra-op threads: n, or every core when n = 0. Returns the number set.
int set_threads(int n);

}  // namespace diffode
