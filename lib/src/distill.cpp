// `diffode distill`: AMED predictor distillation (Zhou et al. 2024, DESIGN.md §4). A
// teacher solver runs the student's schedule with M extra points per interval; its states
// at the student's grid points are cached once. The student then steps from the teacher's
// point (single-step solvers) or along its own trajectory (multistep solvers), and the
// predictor is trained by Adam on the squared distance to the teacher's next point, with
// gradients through the frozen TorchScript model.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>

#include "diffode/amed.hpp"
#include "diffode/distill.hpp"
#include "diffode/error.hpp"
#include "diffode/io.hpp"
#include "diffode/model.hpp"
#include "diffode/sampler.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The student's grid with m extra points in each interval: the schedule itself at
// N·(m+1) steps when that contains the student's points, else geometric (linear into
// σ = 0) insertion.
Grid refine_grid(const Grid& g, int m, const ScheduleSpec& spec, const SigmaRange& range) {
  const int n = static_cast<int>(g.size()) - 1;
  if (spec.schedule->name != "custom") {
    Grid fine = make_grid(spec, n * (m + 1), range);
    bool contains = true;
    for (int i = 0; i <= n; ++i) {
      const double a = fine[static_cast<size_t>(i * (m + 1))], b = g[static_cast<size_t>(i)];
      contains = contains && (a == b || std::abs(a - b) <= 1e-9 * std::abs(b));
    }
    if (contains) {
      for (int i = 0; i <= n; ++i) fine[static_cast<size_t>(i * (m + 1))] = g[static_cast<size_t>(i)];
      return fine;
    }
  }
  Grid fine;
  for (int i = 0; i < n; ++i) {
    const double a = g[static_cast<size_t>(i)], b = g[static_cast<size_t>(i) + 1];
    if (std::isinf(a))
      throw InputError("cannot place teacher points between sigma inf and " + std::to_string(b) + " on schedule '" +
                       spec.schedule->name + "': use a schedule given by a formula (e.g. time_uniform)");
    fine.push_back(a);
    for (int k = 1; k <= m; ++k) {
      const double u = static_cast<double>(k) / (m + 1);
      fine.push_back(b > 0 ? a * std::pow(b / a, u) : a * (1 - u));
    }
  }
  fine.push_back(g.back());
  return fine;
}

// Adam (Kingma & Ba 2015) on a fixed list of parameters.
class Adam {
 public:
  Adam(std::vector<at::Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
    for (const auto& p : params_) {
      m_.push_back(at::zeros_like(p));
      v_.push_back(at::zeros_like(p));
    }
  }
  void zero_grad() {
    for (auto& p : params_)
      if (p.grad().defined()) p.mutable_grad().zero_();
  }
  void step() {
    at::NoGradGuard no_grad;
    ++t_;
    const double c1 = 1 - std::pow(kBeta1, static_cast<double>(t_)), c2 = 1 - std::pow(kBeta2, static_cast<double>(t_));
    for (size_t k = 0; k < params_.size(); ++k) {
      const at::Tensor g = params_[k].grad();
      if (!g.defined()) continue;
      m_[k].mul_(kBeta1).add_(g, 1 - kBeta1);
      v_[k].mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
      params_[k].addcdiv_(m_[k], (v_[k] / c2).sqrt_().add_(kEps), -lr_ / c1);
    }
  }

 private:
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  std::vector<at::Tensor> params_, m_, v_;
  double lr_;
  int64_t t_ = 0;
};

using Clock = std::chrono::steady_clock;

// Everything one distillation run works with.
struct Setup {
  const Config& cfg;
  const Model& model;
  const SolverInfo& student;
  const SolverInfo& teacher;
  StepPlan plan;
  Grid fine;
  int64_t k0;  // first interval the predictor acts on (1 when the grid starts at σ = inf)
  at::ScalarType dtype;
  at::Tensor labels;  // class of every distillation trajectory, int64 (undefined: unconditional)
};

// The labels of trajectories `rows` (a slice or an index of s.labels); undefined if none.
at::Tensor labels_at(const Setup& s, const std::function<at::Tensor(const at::Tensor&)>& rows) {
  return s.labels.defined() ? rows(s.labels) : at::Tensor();
}

// Teacher states at the student's grid points for trajectories first..first+count-1 of the
// distillation seeds: [count, N+1, *shape].
at::Tensor teacher_states(const Setup& s, ModelDenoiser& den, const Grid& fine, int64_t first, int64_t count) {
  const ModelMeta& meta = s.model.meta();
  const int n = s.plan.steps;
  const int per = (static_cast<int>(fine.size()) - 1) / n;  // fine intervals per student interval
  const at::Tensor eps = make_noise(s.cfg.distill.seed, first, count, meta.sample_shape).to(s.dtype);
  den.reset();
  den.set_condition(labels_at(s, [&](const at::Tensor& l) { return l.slice(0, first, first + count); }),
                    s.cfg.sampling.guidance);
  std::vector<at::Tensor> points(static_cast<size_t>(n) + 1);
  points[0] = std::isinf(fine.front()) ? eps : eps * fine.front();
  integrate(s.teacher, den, eps, fine, {}, false, [&](int j, const at::Tensor& x) {
    if ((j + 1) % per == 0) points[static_cast<size_t>((j + 1) / per)] = x.to(at::kFloat);
  });
  den.check_finite(fine);
  return at::stack(points, 1).to(at::kFloat);
}

// The student's squared distance to the teacher over one batch of trajectories.
at::Tensor student_loss(const Setup& s, ModelDenoiser& den, const AmedPredictor& pred, const at::Tensor& traj,
                        const at::Tensor& labels) {
  const Grid& g = s.plan.grid;
  const int n = s.plan.steps;
  den.reset();
  den.set_condition(labels, s.cfg.sampling.guidance);
  at::Tensor loss = at::zeros({}, at::TensorOptions().dtype(s.dtype));
  auto target = [&](int64_t i) { return traj.select(1, i).to(s.dtype, false, true); };
  const SolverOptions first_opt{s.plan.afs && s.k0 == 0, s.cfg.solver.max_order, &pred};
  if (s.student.multistep) {  // along its own trajectory, from the teacher's first point
    SolverOptions opt = first_opt;
    solve(s.student, den, target(s.k0), Grid(g.begin() + s.k0, g.end()), opt, [&](int j, const at::Tensor& x) {
      loss = loss + (x - target(s.k0 + j + 1)).pow(2).mean();
    });
  } else {  // one step from each teacher point
    for (int64_t i = s.k0; i < n; ++i) {
      SolverOptions opt = first_opt;
      opt.afs = opt.afs && i == 0;
      const at::Tensor x = solve(s.student, den, target(i), {g[static_cast<size_t>(i)], g[static_cast<size_t>(i) + 1]},
                                        opt, [](int, const at::Tensor&) {});
      loss = loss + (x - target(i + 1)).pow(2).mean();
    }
  }
  return loss / static_cast<double>(n - s.k0);
}

}  // namespace

json run_distill(const Config& cfg, const fs::path& out, const DistillProgressFn& progress) {
  const auto t_start = Clock::now();
  const int threads = set_threads(cfg.model.threads);
  const DistillConfig& dc = cfg.distill;
  const Model model = load_run_model(cfg);
  const ModelMeta& meta = model.meta();
  const SolverInfo& student = cfg.solver.info();
  if (!student.learned) {
    std::string learned;
    for (const auto& s : solvers())
      if (s.learned) learned += (learned.empty() ? "" : ", ") + s.name;
    throw InputError(cfg.source + ": /solver/name: solver '" + student.name +
                     "' uses no predictor, so there is nothing to distill; choose one of " + learned);
  }
  if (cfg.schedule.denoise_to_zero)
    throw InputError(cfg.source + ": /schedule/denoise_to_zero: distillation targets the ODE solution at sigma_min; "
                     "set it to false");
  check_conditioning(cfg, model);
  const SigmaRange range{meta.sigma_min, meta.sigma_max, meta.process};
  const auto dtype = cfg.solver.precision == "float64" ? at::kDouble : at::kFloat;
  Setup s{cfg, model, student, *dc.teacher, plan_run(cfg, meta), {}, 0, dtype, {}};
  s.k0 = std::isinf(s.plan.grid.front()) ? 1 : 0;
  if (s.plan.steps - s.k0 < 1)
    throw InputError(cfg.source + ": /solver: " + std::to_string(s.plan.steps) +
                     " step(s) leave no interval for the predictor; use more steps");
  try {
    s.fine = refine_grid(s.plan.grid, dc.teacher_points, cfg.schedule, range);
  } catch (const InputError& e) {
    throw InputError(cfg.source + ": /distill/teacher_points: " + e.what());
  }
  ModelDenoiser den(model, dtype);
  const PredictorUse use{model.sha256(), student.name, s.plan.steps, s.plan.afs, s.plan.grid, den.feature_dim()};
  const json identity = predictor_identity(use, cfg.schedule);

  // Continue from a predictor already at `out` for the same setting.
  std::optional<AmedPredictor> resumed;
  if (fs::exists(out)) {
    try {
      resumed = AmedPredictor::load(out);
      check_predictor(*resumed, out, use);
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + "; " + out.string() +
                       " exists and is not a predictor for this setting: remove it or choose another -o");
    }
  }
  AmedPredictor pred =
      resumed ? *resumed : AmedPredictor::create(den.feature_dim(), dc.scale_dir, dc.scale_time, static_cast<uint64_t>(dc.seed));
  const json prev_training = resumed ? resumed->metadata().value("training", json::object()) : json::object();
  int64_t done = prev_training.value("iterations_run", int64_t{0});
  double best = prev_training.value("best_validation_loss", std::numeric_limits<double>::infinity());
  if (resumed) spdlog::info("continuing {} from iteration {} (best validation loss {:.4g})", out.string(), done, best);
  if (!model.has_features())
    spdlog::warn("model {} has no forward_with_features: the predictor sees zero features and learns a fixed step "
                 "schedule", model.path().filename().string());

  // Teacher trajectories: made once, cached by everything that determines them.
  const int64_t total = dc.trajectories + dc.validation;
  // the sampling labels, drawn for the distillation seeds
  if (const auto l = sample_labels(cfg.sampling.labels, dc.seed, meta.num_classes, meta.sample_shape, 0, total);
      !l.empty())
    s.labels = at::tensor(l, at::kLong);
  const json key = {{"model", model.sha256()}, {"teacher", dc.teacher->name}, {"student_sigmas", identity["sigmas"]}, {"teacher_sigmas", json(s.fine)},
                    {"seed", dc.seed}, {"count", total}, {"labels", to_json(cfg.sampling.labels)},
                    {"guidance", cfg.sampling.guidance}, {"precision", cfg.solver.precision},
                    {"dtype", cfg.model.dtype}, {"overrides", cfg.model.overrides}};
  const fs::path cache = cache_dir() / ("teacher-" + sha256_hex(key.dump()).substr(0, 24) + ".npy");
  at::Tensor traj;
  std::vector<int64_t> traj_shape = {total, s.plan.steps + 1};
  traj_shape.insert(traj_shape.end(), meta.sample_shape.begin(), meta.sample_shape.end());
  if (fs::exists(cache)) {
    const NpyArray a = read_npy(cache);
    if (a.shape == traj_shape) {
      traj = at::from_blob(const_cast<float*>(a.data.data()), traj_shape, at::kFloat).clone();
      spdlog::info("teacher trajectories from the cache {}", cache.string());
    }
  }
  const int teacher_nfe = count_nfe(s.teacher, s.fine, {}, false);
  if (!traj.defined()) {
    spdlog::info("teacher {} with {} extra point(s) per interval ({} NFE): {} trajectories", dc.teacher->name,
                 dc.teacher_points, teacher_nfe, total);
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> parts;
    for (int64_t first = 0; first < total; first += dc.batch_size) {
      parts.push_back(teacher_states(s, den, s.fine, first, std::min(dc.batch_size, total - first)));
      if (progress) progress(0, dc.iterations, std::nan(""), std::nan(""));
      spdlog::debug("teacher: {} of {} trajectories", first + parts.back().size(0), total);
    }
    traj = at::cat(parts).contiguous();
    std::error_code ec;
    fs::create_directories(cache.parent_path(), ec);
    try {
      write_npy(cache, traj_shape, traj.data_ptr<float>());
    } catch (const std::exception& e) {
      spdlog::warn("teacher trajectories not cached ({})", e.what());
    }
  }
  const double teacher_s = std::chrono::duration<double>(Clock::now() - t_start).count();

  const at::Tensor train = traj.slice(0, 0, dc.trajectories), val = traj.slice(0, dc.trajectories, total);
  auto validate = [&] {
    at::NoGradGuard no_grad;
    double sum = 0;
    int64_t count = 0;
    for (int64_t first = 0; first < dc.validation; first += dc.batch_size) {
      const int64_t c = std::min(dc.batch_size, dc.validation - first);
      const int64_t row = dc.trajectories + first;
      sum += student_loss(s, den, pred, val.slice(0, first, first + c),
                          labels_at(s, [&](const at::Tensor& l) { return l.slice(0, row, row + c); }))
                 .item<double>() * static_cast<double>(c);
      count += c;
    }
    return sum / static_cast<double>(count);
  };

  // Is the teacher worth learning from? Its own change when refined twice more, against
  // the untrained student's distance to it (both on the first validation batch).
  double midpoint_val = prev_training.value("midpoint_validation_loss", std::nan(""));
  if (!resumed) {
    midpoint_val = validate();
    at::NoGradGuard no_grad;
    const int64_t c = std::min<int64_t>(dc.validation, 16);
    const Grid finer = refine_grid(s.plan.grid, 2 * dc.teacher_points + 1, cfg.schedule, range);
    const at::Tensor a = teacher_states(s, den, finer, dc.trajectories, c);
    const double teacher_err = (a - val.slice(0, 0, c)).slice(1, s.k0 + 1).pow(2).mean().item<double>();
    spdlog::info("untrained student (midpoint) validation loss {:.4g}; teacher vs. its twice-refined self {:.4g}",
                 midpoint_val, teacher_err);
    if (!(teacher_err < 0.5 * midpoint_val))
      spdlog::warn("the teacher ({} with {} extra point(s)) is not clearly more accurate than the student: its error "
                   "{:.4g} vs. the student's {:.4g}; raise distill.teacher_points or choose a higher-order teacher",
                   dc.teacher->name, dc.teacher_points, teacher_err, midpoint_val);
  }

  json base_meta = identity;
  base_meta["model_path"] = model.path().filename().string();
  base_meta["guidance"] = cfg.sampling.guidance;
  base_meta["labels"] = to_json(cfg.sampling.labels);
  base_meta["max_order"] = cfg.solver.max_order;
  base_meta["scale_dir"] = dc.scale_dir;
  base_meta["scale_time"] = dc.scale_time;
  base_meta["teacher"] = {{"solver", dc.teacher->name}, {"extra_points", dc.teacher_points}, {"nfe", teacher_nfe}};
  base_meta["distill"] = to_json(cfg.distill);
  auto save = [&](int64_t run, double best_loss) {
    json m = base_meta;
    m["training"] = {{"iterations_run", run},
                     {"best_validation_loss", best_loss},
                     {"midpoint_validation_loss", midpoint_val},
                     {"seconds", prev_training.value("seconds", 0.0) +
                                     std::chrono::duration<double>(Clock::now() - t_start).count()}};
    pred.set_metadata(m);
    pred.save(out);
  };
  if (!resumed) {
    best = midpoint_val;
    save(0, best);
  }

  // Training. The batch of iteration `it` depends only on (seed, it): a re-run repeats it.
  std::vector<at::Tensor> params = pred.parameters();
  for (auto& p : params) p.requires_grad_(true);
  std::vector<at::Tensor> best_params;
  for (const auto& p : params) best_params.push_back(p.detach().clone());
  Adam adam(params, dc.lr);
  double last_loss = std::nan("");
  for (int64_t it = done; it < dc.iterations; ++it) {
    at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(dc.seed + it));
    const at::Tensor idx = at::randperm(dc.trajectories, gen, at::kLong).slice(0, 0, dc.batch_size);
    adam.zero_grad();
    const at::Tensor loss = student_loss(s, den, pred, train.index_select(0, idx),
                                         labels_at(s, [&](const at::Tensor& l) { return l.index_select(0, idx); }));
    last_loss = loss.item<double>();
    if (!std::isfinite(last_loss))
      throw InputError("distillation diverged at iteration " + std::to_string(it + 1) + " (training loss " +
                       std::to_string(last_loss) + "); " + out.string() + " keeps the best predictor so far " +
                       "(validation loss " + std::to_string(best) + "); lower distill.lr (now " +
                       std::to_string(dc.lr) + ")");
    loss.backward();
    adam.step();
    if ((it + 1) % dc.eval_every == 0 || it + 1 == dc.iterations) {
      const double v = validate();
      if (!std::isfinite(v))
        throw InputError("distillation diverged at iteration " + std::to_string(it + 1) + " (validation loss " +
                         std::to_string(v) + "); " + out.string() + " keeps the best predictor so far");
      if (v < best) {
        best = v;
        for (size_t k = 0; k < params.size(); ++k) best_params[k] = params[k].detach().clone();
      }
      {  // the file always holds the best parameters
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> current;
        for (size_t k = 0; k < params.size(); ++k) {
          current.push_back(params[k].detach().clone());
          params[k].copy_(best_params[k]);
        }
        save(it + 1, best);
        for (size_t k = 0; k < params.size(); ++k) params[k].copy_(current[k]);
      }
      spdlog::debug("iteration {}: training loss {:.4g}, validation loss {:.4g} (best {:.4g})", it + 1, last_loss, v,
                    best);
    }
    if (progress) progress(it + 1, dc.iterations, last_loss, best);
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - t_start).count();
  spdlog::info("predictor {}: validation loss {:.4g} (untrained midpoint {:.4g}, ratio {:.3f}) in {:.1f} s "
               "(teacher {:.1f} s), {} threads",
               out.string(), best, midpoint_val, best / midpoint_val, total_s, teacher_s, threads);
  return AmedPredictor::load(out).metadata();
}

}  // namespace diffode
