#include "diffode/sampler.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "diffode/amed.hpp"
#include "diffode/error.hpp"
#include "diffode/io.hpp"
#include "diffode/model.hpp"
#include "diffode/quality.hpp"
#include "diffode/version.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

Tensor integrate(const SolverInfo& solver, Denoiser& den, const Tensor& eps, const Grid& grid,
                 const SolverOptions& opt, bool denoise_to_zero, const StepCallback& on_step) {
  Tensor x;
  if (std::isinf(grid.front())) {
    // x̃ = D + (σ'/σ)(x̃ − D) → D(ε, inf) + σ' ε as σ → inf; AFS takes D ≈ 0 there.
    x = opt.afs ? eps * grid[1] : den.denoise(eps, grid[0]).add_(eps, grid[1]);
    on_step(0, x);
    if (grid.size() > 2) {
      SolverOptions rest = opt;
      rest.afs = false;
      x = solver.fn(den, std::move(x), Grid(grid.begin() + 1, grid.end()), rest,
                    [&on_step](int i, const Tensor& xi) { on_step(i + 1, xi); });
    }
  } else {
    x = solver.fn(den, eps * grid[0], grid, opt, on_step);
  }
  if (denoise_to_zero) x = den.denoise(x, grid.back());
  return x;
}

namespace {
// Counts denoiser calls; returns D = 0.
class CountingDenoiser final : public Denoiser {
 public:
  Tensor denoise(const Tensor& x, double) override {
    ++calls;
    return at::zeros_like(x);
  }
  Tensor denoise(const Tensor& x, const Tensor&) override {
    ++calls;
    return at::zeros_like(x);
  }
  int calls = 0;
};
}  // namespace

int count_nfe(const SolverInfo& solver, const Grid& grid, const SolverOptions& opt, bool denoise_to_zero) {
  CountingDenoiser den;
  // The NFE of an AMED solver does not depend on what its predictor says.
  const FixedStep midpoint;
  SolverOptions counting = opt;
  if (solver.learned && !counting.predictor) counting.predictor = &midpoint;
  integrate(solver, den, at::ones({1}, at::kDouble), grid, counting, denoise_to_zero);
  return den.calls;
}

StepPlan plan_steps(const SolverInfo& solver, const ScheduleSpec& schedule, const SigmaRange& range,
                    std::optional<int> steps, std::optional<int> nfe, std::optional<bool> afs, int max_order,
                    bool denoise_to_zero) {
  auto plan_for = [&](int n, bool with_afs) {
    StepPlan p{n, 0, with_afs, make_grid(schedule, n, range)};
    p.nfe = count_nfe(solver, p.grid, SolverOptions{with_afs, max_order}, denoise_to_zero);
    return p;
  };
  if (!nfe) return plan_for(steps.value_or(fixed_steps(schedule).value_or(18)), afs.value_or(false));

  const int target = *nfe;
  std::vector<bool> afs_choices = afs ? std::vector<bool>{*afs} : std::vector<bool>{false, true};
  std::vector<std::string> reachable;
  for (bool with_afs : afs_choices) {
    if (auto fixed = fixed_steps(schedule)) {
      StepPlan p = plan_for(*fixed, with_afs);
      if (p.nfe == target) return p;
      reachable.push_back(std::to_string(p.nfe) + " (" + std::to_string(*fixed) + " steps" +
                          (with_afs ? ", afs" : "") + ")");
      continue;
    }
    // NFE grows strictly with the number of steps: bisect for the step count.
    int lo = 1, hi = target + 1;
    StepPlan below{0, -1, with_afs, {}}, above{0, -1, with_afs, {}};
    while (lo <= hi) {
      const int mid = (lo + hi) / 2;
      StepPlan p = plan_for(mid, with_afs);
      if (p.nfe == target) return p;
      if (p.nfe < target) {
        below = p;
        lo = mid + 1;
      } else {
        above = p;
        hi = mid - 1;
      }
    }
    for (const StepPlan* p : {&below, &above})
      if (p->nfe >= 0)
        reachable.push_back(std::to_string(p->nfe) + " (" + std::to_string(p->steps) + " steps" +
                            (with_afs ? ", afs" : "") + ")");
  }
  std::string msg = "solver '" + solver.name + "' cannot use exactly " + std::to_string(target) +
                    " model evaluations on this schedule (" + solver.nfe_rule + ")";
  if (!reachable.empty()) {
    msg += "; nearest reachable:";
    for (size_t i = 0; i < reachable.size(); ++i) msg += (i ? ", " : " ") + reachable[i];
  }
  throw InputError(msg);
}

namespace {

// The first words torch's CPU generator gives after manual_seed(seed): MT19937 seeded with
// the seed's low 32 bits (at::mt19937), up to kWords of them. Word i < 227 of the first
// twisted block reads only initial words i, i + 1 and i + 397, so 429 of the 624 initial
// words are computed and 32 twisted: a third of seeding a whole generator, which is most
// of the cost of noise for small samples.
class SeededWords {
 public:
  static constexpr int kWords = 32;  // randn of up to 16 values (2 words per uniform, 2 uniforms per pair)

  explicit SeededWords(uint64_t seed) {
    constexpr uint32_t n = kWords + 397;
    std::array<uint32_t, n> s;
    s[0] = static_cast<uint32_t>(seed);
    for (uint32_t j = 1; j < n; ++j) s[j] = 1812433253u * (s[j - 1] ^ (s[j - 1] >> 30)) + j;
    for (int i = 0; i < kWords; ++i) {
      const uint32_t mixed = (s[i] & 0x80000000u) | (s[i + 1] & 0x7fffffffu);
      uint32_t y = s[i + 397] ^ (mixed >> 1) ^ ((s[i + 1] & 1u) ? 0x9908b0dfu : 0u);
      y ^= y >> 11;
      y ^= (y << 7) & 0x9d2c5680u;
      y ^= (y << 15) & 0xefc60000u;
      y ^= y >> 18;
      words_[i] = y;
    }
  }

  // The generator interface at::normal_distribution reads (as at::CPUGeneratorImpl).
  uint32_t random() { return words_[next_++]; }
  uint64_t random64() {
    const uint64_t hi = random();
    return (hi << 32) | random();
  }
  c10::optional<double> next_double_normal_sample() { return cached_; }
  void set_next_double_normal_sample(c10::optional<double> v) { cached_ = v; }

 private:
  std::array<uint32_t, kWords> words_{};
  size_t next_ = 0;
  c10::optional<double> cached_;
};

// torch.randn of fewer than 16 values takes torch's scalar path: each value from
// at::normal_distribution<double> (Box–Muller, the pair's second value cached), cast to float.
constexpr int64_t kScalarRandnMax = 15;

void scalar_randn(uint64_t seed, float* out, int64_t n) {
  SeededWords words(seed);
  for (int64_t i = 0; i < n; ++i) {
    at::normal_distribution<double> normal(0.0, 1.0);
    out[i] = static_cast<float>(normal(&words));
  }
}

}  // namespace

Tensor make_noise(int64_t seed, int64_t first, int64_t count, const std::vector<int64_t>& shape) {
  std::vector<int64_t> full = {count};
  full.insert(full.end(), shape.begin(), shape.end());
  Tensor out = at::empty(full, at::kFloat);
  const int64_t n = c10::multiply_integers(shape);
  // Rows are independent (one generator state per seed), so threads split them, and every
  // row gets the same numbers as alone: torch.manual_seed(seed + k); torch.randn(shape).
  at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
    if (n <= kScalarRandnMax) {  // small samples: the same numbers without a tensor per row
      float* p = out.data_ptr<float>();
      for (int64_t k = begin; k < end; ++k) scalar_randn(static_cast<uint64_t>(seed + first + k), p + k * n, n);
      return;
    }
    at::Generator gen = at::detail::createCPUGenerator();
    for (int64_t k = begin; k < end; ++k) {
      gen.set_current_seed(static_cast<uint64_t>(seed + first + k));
      out[k].normal_(0.0, 1.0, gen);  // row k is contiguous, of that shape
    }
  });
  return out;
}

std::vector<int64_t> sample_labels(const SamplingConfig& s, int64_t num_classes, const std::vector<int64_t>& shape,
                                   int64_t first, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t k = first; k < first + count; ++k) {
    if (s.labels == "list") {
      out.push_back(s.label_list[static_cast<size_t>(k) % s.label_list.size()]);
    } else if (s.labels == "cycle") {
      out.push_back(k % num_classes);
    } else if (s.labels == "random") {
      at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(s.seed + k));
      at::randn(shape, gen, at::kFloat);  // the sample's noise comes first in its stream
      out.push_back(at::randint(num_classes, {1}, gen).item<int64_t>());
    }
  }
  return out;
}

int set_threads(int n) {
  const int threads = n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return threads;
}

// Labels and guidance against what the model offers (DESIGN.md §5, §6).
void check_conditioning(const Config& cfg, const Model& model) {
  const SamplingConfig& sc = cfg.sampling;
  const ModelMeta& meta = model.meta();
  const std::string where = cfg.source + ": /sampling/";
  if (!sc.labels.empty() && meta.num_classes == 0)
    throw InputError(where + "labels: model " + model.path().string() + " is not class-conditional (num_classes 0)");
  for (size_t i = 0; i < sc.label_list.size(); ++i) {
    const int64_t y = sc.label_list[i];
    if (y < 0 || y > meta.num_classes || (y == meta.num_classes && !meta.null_class))
      throw InputError(where + "labels/" + std::to_string(i) + ": label " + std::to_string(y) + " is outside [0, " +
                       std::to_string(meta.num_classes - 1) + "]" +
                       (meta.null_class ? " (or " + std::to_string(meta.num_classes) + ", the null class)" : ""));
  }
  if (sc.guidance == 1.0) return;
  if (!meta.null_class)
    throw InputError(where + "guidance: model " + model.path().string() +
                     " has no null class (metadata null_class), so it cannot be guided; use guidance 1");
  if (sc.labels.empty()) throw InputError(where + "guidance: guidance needs class labels (sampling.labels)");
}

StepPlan plan_run(const Config& cfg, const ModelMeta& meta) {
  const SolverInfo& solver = find_solver(cfg.solver.name);
  const SigmaRange range{meta.sigma_min, meta.sigma_max, meta.process};
  StepPlan plan;
  try {
    plan = plan_steps(solver, cfg.schedule.spec, range, cfg.solver.steps, cfg.solver.nfe, cfg.solver.afs,
                      cfg.solver.max_order, cfg.schedule.denoise_to_zero);
  } catch (const InputError& e) {
    throw InputError(cfg.source + ": " + (cfg.solver.nfe ? "/solver/nfe" : "/schedule") + ": " + e.what());
  }
  if (cfg.schedule.denoise_to_zero && plan.grid.back() == 0)
    throw InputError(cfg.source + ": /schedule/denoise_to_zero: the grid already ends at sigma 0");
  return plan;
}

std::optional<AmedPredictor> load_run_predictor(const Config& cfg, const Model& model, const StepPlan& plan) {
  const SolverInfo& solver = find_solver(cfg.solver.name);
  if (!solver.learned) return std::nullopt;
  if (!cfg.solver.predictor)
    throw InputError(cfg.source + ": /solver/predictor: solver '" + solver.name +
                     "' needs a step predictor file; distill one with 'diffode distill -c " + cfg.source + "'");
  AmedPredictor p = AmedPredictor::load(*cfg.solver.predictor);
  const PredictorUse use{model.sha256(), solver.name, plan.steps, plan.afs, plan.grid,
                         model.has_features() ? model.feature_dim() : 1};
  check_predictor(p, *cfg.solver.predictor, use);
  if (!model.has_features())
    spdlog::warn("model {} has no forward_with_features: the AMED predictor sees zero features (a fixed step "
                 "schedule)", model.path().filename().string());
  return p;
}

Model load_run_model(const Config& cfg) {
  return Model::load({cfg.model.path, cfg.model.device, cfg.model.dtype, cfg.model.overrides, cfg.source + ": /model"});
}

SampleJob::SampleJob(Config cfg, Model model)
    : cfg_(std::move(cfg)), model_(std::move(model)), solver_(&find_solver(cfg_.solver.name)) {
  const ModelMeta& meta = model_.meta();
  plan_ = plan_run(cfg_, meta);
  predictor_ = load_run_predictor(cfg_, model_, plan_);
  check_conditioning(cfg_, model_);
  json grid = json::array();
  for (double s : plan_.grid) grid.push_back(std::isinf(s) ? json("inf") : json(s));
  const SolverConfig& sc = cfg_.solver;
  // The thread count changes no sample (DESIGN.md §6): it is in timings.json, not here, so
  // shards and resumed runs on machines of any size belong to one run.
  json config = cfg_.json;
  config["model"].erase("threads");
  identity_ = {
      {"diffode_version", kVersion},
      {"config", config},
      {"model", {{"path", model_.path().string()}, {"sha256", model_.sha256()}, {"metadata", meta.json}}},
      {"solver",
       {{"name", solver_->name}, {"steps", plan_.steps}, {"nfe", plan_.nfe}, {"afs", plan_.afs},
        {"precision", sc.precision}, {"max_order", sc.max_order},
        {"predictor", sc.predictor ? json({{"path", sc.predictor->string()}, {"sha256", sha256_file(*sc.predictor)}})
                                   : json(nullptr)}}},
      {"schedule",
       {{"name", cfg_.schedule.spec.name}, {"sigmas", grid}, {"denoise_to_zero", cfg_.schedule.denoise_to_zero}}},
      {"nfe", plan_.nfe},
      {"network_passes_per_sample", plan_.nfe * (cfg_.sampling.guidance != 1.0 ? 2 : 1)},
  };
  if (cfg_.schedule.spec.rho) identity_["schedule"]["rho"] = *cfg_.schedule.spec.rho;
}

std::vector<int64_t> SampleJob::labels(int64_t first, int64_t count) const {
  return sample_labels(cfg_.sampling, model_.meta().num_classes, model_.meta().sample_shape, first, count);
}

Tensor SampleJob::sample(int64_t first, int64_t count, const std::function<void()>& on_step) const {
  const auto state_dtype = cfg_.solver.precision == "float64" ? at::kDouble : at::kFloat;
  const SolverOptions opt{plan_.afs, cfg_.solver.max_order, predictor_ ? &*predictor_ : nullptr};
  ModelDenoiser den(model_, state_dtype);
  const std::vector<int64_t> y = labels(first, count);
  den.set_condition(y.empty() ? Tensor() : at::tensor(y, at::kLong).to(model_.device()), cfg_.sampling.guidance);
  const Tensor eps = make_noise(cfg_.sampling.seed, first, count, model_.meta().sample_shape)
                         .to(at::TensorOptions().dtype(state_dtype).device(model_.device()));
  const Tensor x = integrate(*solver_, den, eps, plan_.grid, opt, cfg_.schedule.denoise_to_zero,
                             [&](int, const Tensor&) {
                               if (on_step) on_step();
                             });
  den.check_finite(plan_.grid);
  return x.to(at::TensorOptions().dtype(at::kFloat).device(at::kCPU)).contiguous();
}

}  // namespace diffode
