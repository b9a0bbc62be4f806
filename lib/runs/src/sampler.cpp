// A config made ready to sample on its model: plan, predictor, conditioning, identity.
#include "diffode/runs/sampler.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/runs/samples.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/runs/tuned_grid.hpp"
#include "diffode/version.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

// Labels and guidance against what the model offers (DESIGN.md §5, §6).
void check_conditioning(const Config& cfg, const Model& model) {
  const SamplingConfig& sc = cfg.sampling;
  const ModelMeta& meta = model.meta();
  const std::string where = cfg.source + ": /sampling/";
  if (sc.labels.any() && meta.num_classes == 0)
    throw InputError(where + "labels: model " + model.path().string() + " is not class-conditional (num_classes 0)");
  for (size_t i = 0; i < sc.labels.list.size(); ++i) {
    const int64_t y = sc.labels.list[i];
    if (y < 0 || y > meta.num_classes || (y == meta.num_classes && !meta.null_class))
      throw InputError(where + "labels/" + std::to_string(i) + ": label " + std::to_string(y) + " is outside [0, " +
                       std::to_string(meta.num_classes - 1) + "]" +
                       (meta.null_class ? " (or " + std::to_string(meta.num_classes) + ", the null class)" : ""));
  }
  if (sc.guidance == 1.0) return;
  if (!meta.null_class)
    throw InputError(where + "guidance: model " + model.path().string() +
                     " has no null class (metadata null_class), so it cannot be guided; use guidance 1");
  if (!sc.labels.any()) throw InputError(where + "guidance: guidance needs class labels (sampling.labels)");
}

SigmaRange schedule_range(const Config& cfg, const Model& model) {
  const ModelMeta& meta = model.meta();
  const std::optional<double> end = cfg.schedule.sigma_min;
  if (end && (*end < meta.sigma_min || *end >= meta.sigma_max)) {
    std::ostringstream msg;
    msg << *end << " is outside the model's sigma range [" << meta.sigma_min << ", " << meta.sigma_max << ")";
    throw ConfigError(cfg.source, "/schedule/sigma_min", msg.str());
  }
  return {end.value_or(meta.sigma_min), meta.sigma_max, meta.process};
}

StepPlan plan_run(const Config& cfg, const Model& model) {
  const ModelMeta& meta = model.meta();
  const SolverConfig& s = cfg.solver;
  const SigmaRange range = schedule_range(cfg, model);
  const Space space = resolve_space(s, meta.process, {cfg.source, "/solver"});
  StepPlan plan;
  try {
    plan = plan_steps(s.info(), cfg.schedule, range, s.steps, s.nfe, s.afs_choice(), s.max_order,
                      cfg.schedule.denoise_to_zero, space, s.learned_last());
  } catch (const InputError& e) {
    throw ConfigError(cfg.source, s.nfe ? "/solver/nfe" : "/schedule", e.what());
  }
  if (s.afs == Afs::mean && std::isinf(plan.grid.front()))
    throw ConfigError(cfg.source, "/solver/afs",
                      "\"mean\" needs a finite sigma_max, but the grid starts at sigma = inf (there the first "
                      "interval is the exact limit D(eps, inf) + sigma_1*eps); use afs true or false, or a "
                      "schedule from a finite sigma_max (model.sigma_max)");
  if (!cfg.schedule.tuned.is_null()) try {
      check_tuned(cfg.schedule.tuned, cfg.schedule.path,
                  {model.sha256(), s.info().name, plan.nfe, afs_json(s, plan), space_name(plan.space),
                   tuned_max_order(s)});
    } catch (const InputError& e) {
      throw ConfigError(cfg.source, "/schedule/path", e.what());
    }
  if (s.learned_last() && plan.grid.back() != 0)
    throw ConfigError(cfg.source, "/solver/last_interval",
                      "\"learned\" learns the interval into sigma 0, but this grid ends at sigma " +
                          json(plan.grid.back()).dump() +
                          "; use a grid to 0 (model.sigma_min 0), or leave last_interval unset");
  if (s.learned_last() && meta.process.timesteps() > 0)
    throw ConfigError(cfg.source, "/solver/last_interval",
                      "\"learned\" puts a point in (0, sigma_N-1), but process '" + meta.process.name() +
                          "' has no sigma below its table (" + meta.process.sigma_span() +
                          "); leave last_interval unset");
  if (cfg.schedule.denoise_to_zero && plan.grid.back() == 0)
    throw ConfigError(cfg.source, "/schedule/denoise_to_zero", "the grid already ends at sigma 0");
  for (size_t i = 0; i < plan.grid.size(); ++i) {  // a discrete table has no time outside its ends
    const double sigma = plan.grid[i];
    if (sigma > 0 && std::isnan(meta.process.time_of(sigma))) {
      std::ostringstream msg;
      msg << "grid point " << i << " (sigma " << sigma << ") is outside process '" << meta.process.name()
          << "', whose table spans sigma " << meta.process.sigma_span()
          << ": keep model.sigma_min at the table's end, or "
          << "use 'trailing' / 'leading' / 'linspace' for a grid to 0";
      throw ConfigError(cfg.source, "/schedule", msg.str());
    }
    if (std::isfinite(sigma) && sigma > kMaxGridSigma)
      throw ConfigError(cfg.source, "/schedule",
                        "grid point " + std::to_string(i) + " (sigma " + json(sigma).dump() + ") is beyond " +
                            json(kMaxGridSigma).dump() + ": the noise sigma*eps would overflow the solver state");
  }
  return plan;
}

json afs_json(const SolverConfig& s, const StepPlan& plan) {
  return s.afs == Afs::mean ? json("mean") : json(plan.afs);
}

AfsMeans afs_means(const Config& cfg, const Model& model, double sigma_max) {
  const ModelMeta& meta = model.meta();
  const auto state_dtype = cfg.solver.state_dtype();
  ModelDenoiser den(model, state_dtype);
  AfsMeans m;
  m.per_class = cfg.sampling.labels.any();
  const int64_t rows = m.per_class ? meta.num_classes + (meta.null_class ? 1 : 0) : 1;
  den.set_condition(m.per_class ? at::arange(rows, at::kLong).to(model.device()) : Tensor(), cfg.sampling.guidance);
  std::vector<int64_t> shape = {rows};
  shape.insert(shape.end(), meta.sample_shape.begin(), meta.sample_shape.end());
  m.x0 = den.denoise(at::zeros(shape, at::TensorOptions().dtype(state_dtype).device(model.device())), sigma_max);
  const Tensor cpu = m.x0.to(at::kCPU, at::kDouble).contiguous();
  if (!at::isfinite(cpu).all().item<bool>())
    throw InputError("model " + model.path().string() + " gives NaN or Inf for D(0, " + json(sigma_max).dump() +
                     ") (the data mean of solver.afs \"mean\")");
  json row_means = json::array();
  for (int64_t r = 0; r < rows; ++r) row_means.push_back(cpu[r].mean().item<double>());
  m.record = {{"sigma", sigma_max},
              {"rows", m.per_class ? "class 0.." + std::to_string(rows - 1) : "unconditional"},
              {"pixel_mean", row_means},
              {"sha256", sha256_hex(std::string(static_cast<const char*>(cpu.data_ptr()),
                                                static_cast<size_t>(cpu.numel()) * sizeof(double)))}};
  return m;
}

Tensor AfsMeans::of(const Tensor& labels) const {
  if (!per_class) return x0;
  return x0.index_select(0, labels.to(x0.device()));
}

std::optional<AmedPredictor> load_run_predictor(const Config& cfg, const Model& model, const StepPlan& plan) {
  const SolverInfo& solver = cfg.solver.info();
  if (!solver.learned) return std::nullopt;
  if (!cfg.solver.predictor)
    throw ConfigError(cfg.source, "/solver/predictor",
                      "solver '" + solver.name + "' needs a step predictor file; distill one with 'diffode distill -c " +
                          cfg.source + "'");
  AmedPredictor p = AmedPredictor::load(*cfg.solver.predictor);
  const PredictorUse use{model.sha256(), solver.name, plan.steps, afs_json(cfg.solver, plan), plan.grid,
                         model.has_features() ? model.feature_dim() : 1, space_name(plan.space),
                         cfg.solver.last_interval_name()};
  check_predictor(p, *cfg.solver.predictor, use);
  if (!model.has_features())
    spdlog::warn("model {} has no forward_with_features: the AMED predictor sees zero features (a fixed step "
                 "schedule)", model.path().filename().string());
  return p;
}

Model load_run_model(const Config& cfg) {
  return Model::load({cfg.model.path, cfg.model.device, cfg.model.dtype, cfg.model.overrides, cfg.source + ": /model"});
}

std::optional<Evaluation> load_evaluation(const Config& cfg, const std::vector<int64_t>& sample_shape) {
  if (!cfg.eval) return std::nullopt;
  Evaluation e{FeatureModel::load(cfg.eval->features, sample_shape, cfg.model.device),
               load_reference_stats(cfg.eval->stats)};
  check_reference(e.features, e.reference, cfg.eval->stats.string() + " (" + cfg.source + ": /eval)");
  return e;
}

std::vector<int64_t> run_labels(const Config& cfg, int64_t num_classes, const std::vector<int64_t>& shape,
                                int64_t first, int64_t count) {
  return sample_labels(cfg.sampling.labels, cfg.sampling.seed, num_classes, shape, first, count);
}

namespace {

// What determines the samples of a job: manifest's "run" (DESIGN.md §8).
json job_identity(const Config& cfg, const Model& model, const StepPlan& plan) {
  const SolverConfig& sc = cfg.solver;
  // The thread count changes no sample (DESIGN.md §6): it is in timings.json, not here, so
  // shards and resumed runs on machines of any size belong to one run.
  json config = to_json(cfg);
  config["model"].erase("threads");
  json identity = {
      {"diffode_version", kVersion},
      {"config", config},
      {"model", {{"path", model.path().string()}, {"sha256", model.sha256()}, {"metadata", model.meta().json}}},
      {"solver",
       {{"name", sc.info().name}, {"steps", plan.steps}, {"nfe", plan.nfe}, {"afs", afs_json(sc, plan)},
        {"space", space_name(plan.space)}, {"precision", sc.precision}, {"max_order", sc.max_order},
        {"predictor", sc.predictor ? json({{"path", sc.predictor->string()}, {"sha256", sha256_file(*sc.predictor)}})
                                   : json(nullptr)}}},
      {"schedule", schedule_json(cfg.schedule)},
      {"nfe", plan.nfe},
      {"network_passes_per_sample", plan.nfe * (cfg.sampling.guidance != 1.0 ? 2 : 1)},
  };
  if (sc.learned_last()) identity["solver"]["last_interval"] = "learned";
  identity["schedule"]["sigmas"] = grid_json(plan.grid);
  identity["schedule"]["denoise_to_zero"] = cfg.schedule.denoise_to_zero;
  return identity;
}

}  // namespace

SampleJob::SampleJob(Config cfg, Model model) : cfg_(std::move(cfg)), model_(std::move(model)) {
  plan_ = plan_run(cfg_, model_);
  predictor_ = load_run_predictor(cfg_, model_, plan_);
  check_conditioning(cfg_, model_);
  identity_ = job_identity(cfg_, model_, plan_);
  if (cfg_.solver.afs == Afs::mean) {
    afs_means_ = afs_means(cfg_, model_, plan_.grid.front());
    identity_["solver"]["afs_mean"] = afs_means_->record;
  }
}

std::vector<int64_t> SampleJob::labels(int64_t first, int64_t count) const {
  return run_labels(cfg_, model_.meta().num_classes, model_.meta().sample_shape, first, count);
}

Tensor SampleJob::sample(int64_t first, int64_t count, const std::function<void()>& on_step) const {
  const auto state_dtype = cfg_.solver.state_dtype();
  const ModelMeta& meta = model_.meta();
  const SampleInputs in = sample_inputs(cfg_.sampling.labels, cfg_.sampling.seed, meta.num_classes,
                                        meta.sample_shape, first, count);
  const SolverOptions opt{plan_.afs, cfg_.solver.max_order, predictor_ ? &*predictor_ : nullptr,
                          plan_.space == Space::time ? &meta.process : nullptr,
                          afs_means_ ? afs_means_->of(at::tensor(in.labels, at::kLong)) : Tensor(),
                          cfg_.solver.learned_last()};
  ModelDenoiser den(model_, state_dtype);
  den.set_condition(in.labels.empty() ? Tensor() : at::tensor(in.labels, at::kLong).to(model_.device()),
                    cfg_.sampling.guidance);
  const Tensor eps = in.noise.to(at::TensorOptions().dtype(state_dtype).device(model_.device()));
  const Tensor x = integrate(solver(), den, eps, plan_.grid, opt, cfg_.schedule.denoise_to_zero,
                             [&](int, const Tensor&) {
                               if (on_step) on_step();
                             });
  den.check_finite(plan_.grid);
  return x.to(at::TensorOptions().dtype(at::kFloat).device(at::kCPU)).contiguous();
}

}  // namespace diffode
