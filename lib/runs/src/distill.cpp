// `diffode distill`: AMED predictor distillation (Zhou et al. 2024, DESIGN.md §4). A
// teacher solver runs the student's schedule with M extra points per interval; its states
// at the student's grid points are cached once. The student then steps from the teacher's
// point (single-step solvers) or along its own trajectory (multistep solvers), and the
// predictor is trained by Adam on the squared distance to the teacher's next point, with
// gradients through the frozen TorchScript model.
//
// run_distill runs in named stages: setup (checks, plan, grids), the predictor to start
// from (new or resumed), the teacher (cached trajectories), validation, training (Trainer)
// and the predictor file (PredictorFile: the best so far, with its metadata).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
// The optimiser; the only translation unit that includes torch/optim (a heavy header).
#include <torch/optim/adam.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>

#include "diffode/core/amed_predictor.hpp"
#include "diffode/runs/distill.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/core/model.hpp"
#include "diffode/runs/sampler.hpp"
#include "diffode/io/atomic_file.hpp"
#include "run_dir.hpp"
#include "clock.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {


// Everything one distillation run works with.
struct Setup {
  const Config& cfg;
  const Model& model;
  const SolverInfo& student;
  const SolverInfo& teacher;
  StepPlan plan;
  Grid fine;        // the teacher's grid: the student's with teacher_points more per interval
  int teacher_nfe;  // of the teacher on `fine`
  int64_t k0;  // first interval the predictor acts on (1 when the grid starts at σ = inf)
  at::ScalarType dtype;
  at::Tensor labels;  // class of every distillation trajectory, int64 (undefined: unconditional)
  std::optional<AfsMeans> afs_means = std::nullopt;  // solver.afs "mean"
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
    if ((j + 1) % per == 0) points[static_cast<size_t>((j + 1) / per)] = x.to(at::kFloat, false, true);  // a copy: solvers update x in place
  });
  den.check_finite(fine);
  return at::stack(points, 1).to(at::kFloat);
}

// The weight of the student's squared distance to the teacher at grid point j (DistillConfig).
double point_weight(const Setup& s, int64_t j) {
  const DistillConfig& dc = s.cfg.distill;
  const double sigma = s.plan.grid[static_cast<size_t>(j)];
  return (dc.normalize ? 1.0 / (1.0 + sigma * sigma) : 1.0) * (j == s.plan.steps ? dc.last_weight : 1.0);
}

// The distillation loss (DESIGN.md §4): Σ_j w_j·mean((x_j − y_j)²) / Σ_j w_j over the grid
// points j added, w_j = point_weight; the student's against the teacher, and the teacher's
// against its refined self (check_teacher).
class WeightedDistance {
 public:
  explicit WeightedDistance(const Setup& s) : s_(s), sum_(at::zeros({}, at::TensorOptions().dtype(s.dtype))) {}
  void add(const at::Tensor& x, const at::Tensor& y, int64_t j) {
    sum_ = sum_ + (x - y).pow(2).mean() * point_weight(s_, j);
    weights_ += point_weight(s_, j);
  }
  at::Tensor mean() const { return sum_ / weights_; }

 private:
  const Setup& s_;
  at::Tensor sum_;
  double weights_ = 0;
};

// The student's weighted mean squared distance to the teacher over one batch of trajectories.
at::Tensor student_loss(const Setup& s, ModelDenoiser& den, const AmedPredictor& pred, const at::Tensor& traj,
                        const at::Tensor& labels) {
  const Grid& g = s.plan.grid;
  const int n = s.plan.steps;
  den.reset();
  den.set_condition(labels, s.cfg.sampling.guidance);
  WeightedDistance loss(s);
  auto target = [&](int64_t i) { return traj.select(1, i).to(s.dtype, false, true); };
  auto add = [&](const at::Tensor& x, int64_t j) { loss.add(x, target(j), j); };
  const bool afs = s.plan.afs && s.k0 == 0;
  const SolverOptions first_opt{afs, s.cfg.solver.max_order, &pred,
                                s.plan.space == Space::time ? &s.model.meta().process : nullptr,
                                afs && s.afs_means ? s.afs_means->of(labels) : at::Tensor(),
                                s.cfg.solver.learned_last()};
  if (s.student.multistep) {  // along its own trajectory, from the teacher's first point
    solve(s.student, den, target(s.k0), Grid(g.begin() + s.k0, g.end()), first_opt,
          [&](int j, const at::Tensor& x) { add(x, s.k0 + j + 1); });
  } else {  // one step from each teacher point
    for (int64_t i = s.k0; i < n; ++i) {
      SolverOptions opt = first_opt;
      opt.afs = opt.afs && i == 0;
      if (!opt.afs) opt.afs_x0 = at::Tensor();
      add(solve(s.student, den, target(i), {g[static_cast<size_t>(i)], g[static_cast<size_t>(i) + 1]}, opt,
                [](int, const at::Tensor&) {}),
          i + 1);
    }
  }
  return loss.mean();
}

// ---------------------------------------------------------------- setup

// The student must be an AMED solver that ends at σ_min, where the teacher's target is.
void check_student(const Config& cfg) {
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
}

// The student's grid with m extra points per interval (refine_grid): geometric (uniform in
// log σ̃) inside every interval between positive points, where the schedule's own spacing
// can leave a long last step in log σ̃ (VP time near σ_min: measured, dpmpp2m with 20
// points per interval of the 3-step vp_time grid to 0.002 is 5.5x closer to the reference
// so); an interval into 0 or from σ̃ = ∞ as the schedule places them.
Grid teacher_grid(const Setup& s, int m) {
  return refine_grid(s.plan.grid, m, s.cfg.schedule, schedule_range(s.cfg, s.model), Inside::geometric);
}

// Stage 0: what the run works with, every check on the config and model made.
Setup make_setup(const Config& cfg, const Model& model) {
  check_student(cfg);
  check_conditioning(cfg, model);
  const DistillConfig& dc = cfg.distill;
  const ModelMeta& meta = model.meta();
  const auto dtype = cfg.solver.state_dtype();
  Setup s{cfg, model, cfg.solver.info(), *dc.teacher, plan_run(cfg, model), {}, 0, 0, dtype, {}};
  s.k0 = std::isinf(s.plan.grid.front()) ? 1 : 0;
  if (s.plan.steps - s.k0 < 1)
    throw InputError(cfg.source + ": /solver: " + std::to_string(s.plan.steps) +
                     " step(s) leave no interval for the predictor; use more steps");
  try {
    s.fine = teacher_grid(s, dc.teacher_points);
  } catch (const InputError& e) {
    throw InputError(cfg.source + ": /distill/teacher_points: " + e.what());
  }
  s.teacher_nfe = count_nfe(s.teacher, s.fine, {}, false);
  // the sampling labels, drawn for the distillation seeds
  if (const auto l = sample_labels(cfg.sampling.labels, dc.seed, meta.num_classes, meta.sample_shape, 0,
                                   dc.trajectories + dc.validation);
      !l.empty())
    s.labels = at::tensor(l, at::kLong);
  if (cfg.solver.afs == Afs::mean) s.afs_means = afs_means(cfg, model, s.plan.grid.front());
  return s;
}

// ---------------------------------------------------------------- the predictor to start from

// Where training stands: iterations run, the best validation loss so far, the untrained
// (midpoint) predictor's, and the seconds spent by the runs a resumed file continues.
struct TrainingState {
  int64_t done = 0;
  double best = std::numeric_limits<double>::infinity();
  double midpoint = std::nan("");
  double seconds = 0;
};

struct Start {
  AmedPredictor pred;
  std::optional<TrainingState> resumed;  // empty for a new predictor
};

// The predictor at `out`, which must be one for this use: a file for another setting is
// never overwritten.
AmedPredictor load_for(const PredictorUse& use, const fs::path& out) {
  try {
    AmedPredictor p = AmedPredictor::load(out);
    check_predictor(p, out, use);
    return p;
  } catch (const InputError& e) {
    throw InputError(std::string(e.what()) + "; " + out.string() +
                     " exists and is not a predictor for this setting: remove it or choose another -o");
  }
}

// Stage 1: the predictor at `out` continued (its best parameters, iterations and losses),
// else a new one at the midpoint.
Start start_predictor(const DistillConfig& dc, const PredictorUse& use, const fs::path& out) {
  if (!fs::exists(out))
    return {AmedPredictor::create(use.feature_dim, dc.scale_dir, dc.scale_time, static_cast<uint64_t>(dc.seed)), {}};
  AmedPredictor p = load_for(use, out);
  const json t = p.metadata().value("training", json::object());
  const TrainingState st{t.value("iterations_run", int64_t{0}),
                         t.value("best_validation_loss", std::numeric_limits<double>::infinity()),
                         t.value("midpoint_validation_loss", std::nan("")), t.value("seconds", 0.0)};
  spdlog::info("continuing {} from iteration {} (best validation loss {:.4g})", out.string(), st.done, st.best);
  return {std::move(p), st};
}

// ---------------------------------------------------------------- the teacher

// The cache key of the teacher trajectories: everything that determines them.
json teacher_key(const Setup& s, const json& student_sigmas) {
  const Config& cfg = s.cfg;
  const DistillConfig& dc = cfg.distill;
  return {{"model", s.model.sha256()},
          {"teacher", dc.teacher->name},
          {"student_sigmas", student_sigmas},
          {"teacher_sigmas", json(s.fine)},
          {"seed", dc.seed},
          {"count", dc.trajectories + dc.validation},
          {"labels", to_json(cfg.sampling.labels)},
          {"guidance", cfg.sampling.guidance},
          {"precision", cfg.solver.precision},
          {"dtype", cfg.model.dtype},
          {"overrides", cfg.model.overrides}};
}

// The cached trajectories; undefined when there are none of this shape.
at::Tensor read_teacher_cache(const fs::path& cache, const std::vector<int64_t>& shape) {
  if (!fs::exists(cache)) return {};
  const NpyArray a = read_npy(cache);
  if (a.shape != shape) return {};
  spdlog::info("teacher trajectories from the cache {}", cache.string());
  return at::from_blob(const_cast<float*>(a.data.data()), shape, at::kFloat).clone();
}

// The teacher's states for every distillation trajectory, a batch at a time.
at::Tensor sample_teacher(const Setup& s, ModelDenoiser& den, const DistillProgressFn& progress) {
  const DistillConfig& dc = s.cfg.distill;
  const int64_t total = dc.trajectories + dc.validation;
  spdlog::info("teacher {} with {} extra point(s) per interval ({} NFE): {} trajectories", dc.teacher->name,
               dc.teacher_points, s.teacher_nfe, total);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (int64_t first = 0; first < total; first += dc.batch_size) {
    parts.push_back(teacher_states(s, den, s.fine, first, std::min(dc.batch_size, total - first)));
    if (progress) progress(0, dc.iterations, std::nan(""), std::nan(""));
    spdlog::debug("teacher: {} of {} trajectories", first + parts.back().size(0), total);
  }
  return at::cat(parts).contiguous();
}

// An unwritable cache only warns: this run has its trajectories.
void write_teacher_cache(const fs::path& cache, const std::vector<int64_t>& shape, const at::Tensor& traj) {
  std::error_code ec;
  fs::create_directories(cache.parent_path(), ec);
  try {
    write_npy(cache, shape, traj.data_ptr<float>());
  } catch (const std::exception& e) {
    spdlog::warn("teacher trajectories not cached ({})", e.what());
  }
}

// Stage 2: the teacher trajectories [T+V, N+1, *shape] (float32), made once and cached
// under their key.
at::Tensor teacher_trajectories(const Setup& s, ModelDenoiser& den, const json& student_sigmas,
                                const DistillProgressFn& progress) {
  const DistillConfig& dc = s.cfg.distill;
  const fs::path cache =
      cache_dir() / ("teacher-" + sha256_hex(teacher_key(s, student_sigmas).dump()).substr(0, 24) + ".npy");
  std::vector<int64_t> shape = {dc.trajectories + dc.validation, s.plan.steps + 1};
  const std::vector<int64_t>& sample_shape = s.model.meta().sample_shape;
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  if (at::Tensor cached = read_teacher_cache(cache, shape); cached.defined()) return cached;
  const at::Tensor traj = sample_teacher(s, den, progress);
  write_teacher_cache(cache, shape, traj);
  return traj;
}

// ---------------------------------------------------------------- validation

// The student's mean loss on the held-out trajectories `val` (labels from row T on).
double validation_loss(const Setup& s, ModelDenoiser& den, const AmedPredictor& pred, const at::Tensor& val) {
  const DistillConfig& dc = s.cfg.distill;
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
}

// Is the teacher worth learning from? Its own change when refined twice more (on the first
// ≤ 16 validation trajectories), against the untrained student's validation loss.
void check_teacher(const Setup& s, ModelDenoiser& den, const at::Tensor& val, double midpoint) {
  const DistillConfig& dc = s.cfg.distill;
  at::NoGradGuard no_grad;
  const int64_t c = std::min<int64_t>(dc.validation, 16);
  const at::Tensor a = teacher_states(s, den, teacher_grid(s, 2 * dc.teacher_points + 1), dc.trajectories, c);
  WeightedDistance err(s);  // as the student's loss
  for (int64_t j = s.k0 + 1; j <= s.plan.steps; ++j)
    err.add(a.select(1, j), val.slice(0, 0, c).select(1, j), j);
  const double teacher_err = err.mean().item<double>();
  spdlog::info("untrained student (midpoint) validation loss {:.4g}; teacher vs. its twice-refined self {:.4g}",
               midpoint, teacher_err);
  if (!(teacher_err < 0.5 * midpoint))
    spdlog::warn("the teacher ({} with {} extra point(s)) is not clearly more accurate than the student: its error "
                 "{:.4g} vs. the student's {:.4g}; raise distill.teacher_points or choose a higher-order teacher",
                 dc.teacher->name, dc.teacher_points, teacher_err, midpoint);
}

// ---------------------------------------------------------------- the predictor file

// The predictor file: the predictor's identity, what it was distilled with and how training
// went ("training"); each write replaces it whole (AmedPredictor::save), so a kill leaves
// the last one.
class PredictorFile {
 public:
  PredictorFile(const Setup& s, json identity, fs::path path, Clock::time_point start)
      : base_(std::move(identity)), path_(std::move(path)), start_(start) {
    const Config& cfg = s.cfg;
    const DistillConfig& dc = cfg.distill;
    base_["model_path"] = s.model.path().filename().string();
    base_["guidance"] = cfg.sampling.guidance;
    base_["labels"] = to_json(cfg.sampling.labels);
    base_["max_order"] = cfg.solver.max_order;
    base_["scale_dir"] = dc.scale_dir;
    base_["scale_time"] = dc.scale_time;
    base_["teacher"] = {{"solver", dc.teacher->name}, {"extra_points", dc.teacher_points}, {"nfe", s.teacher_nfe}};
    base_["distill"] = to_json(dc);
  }

  const fs::path& path() const { return path_; }

  void write(AmedPredictor& pred, const TrainingState& st) const {
    json m = base_;
    m["training"] = {{"iterations_run", st.done},
                     {"best_validation_loss", st.best},
                     {"midpoint_validation_loss", st.midpoint},
                     {"seconds", st.seconds + seconds_since(start_)}};
    pred.set_metadata(m);
    write_file_atomic(path_, pred.archive_bytes());
  }

 private:
  json base_;
  fs::path path_;
  Clock::time_point start_;  // of this run
};

// A new predictor's start: the untrained (midpoint) validation loss is the first best and is
// written at iteration 0; the teacher is checked against it.
TrainingState first_validation(const Setup& s, ModelDenoiser& den, AmedPredictor& pred, const at::Tensor& val,
                               const PredictorFile& file) {
  TrainingState st;
  st.midpoint = validation_loss(s, den, pred, val);
  check_teacher(s, den, val, st.midpoint);
  st.best = st.midpoint;
  file.write(pred, st);
  return st;
}

// ---------------------------------------------------------------- training

// The predictor's parameters as leaves that require grad (a loaded file's need not).
std::vector<at::Tensor> trainable(const AmedPredictor& pred) {
  std::vector<at::Tensor> params = pred.parameters();
  for (auto& p : params) p.requires_grad_(true);
  return params;
}

std::vector<at::Tensor> copies(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> out;
  for (const auto& t : ts) out.push_back(t.detach().clone());
  return out;
}

// Stage 3: Adam on the predictor's parameters up to distill.iterations. Iteration `it`
// trains on a batch drawn by a permutation seeded distill.seed + it, so a resumed run (with
// fresh moments) draws what the uninterrupted one would. Every eval_every iterations and at
// the last, validation keeps the best parameters and the file is rewritten with them.
class Trainer {
 public:
  Trainer(const Setup& s, ModelDenoiser& den, AmedPredictor& pred, const PredictorFile& file, at::Tensor train,
          at::Tensor val, const TrainingState& st)
      : s_(s),
        den_(den),
        pred_(pred),
        file_(file),
        train_(std::move(train)),
        val_(std::move(val)),
        st_(st),
        params_(trainable(pred)),
        best_(copies(params_)),
        adam_(params_, torch::optim::AdamOptions(s.cfg.distill.lr).betas(std::make_tuple(0.9, 0.999)).eps(1e-8)) {}

  TrainingState run(const DistillProgressFn& progress) {
    const DistillConfig& dc = s_.cfg.distill;
    for (int64_t it = st_.done; it < dc.iterations; ++it) {
      const double loss = step(it);
      if ((it + 1) % dc.eval_every == 0 || it + 1 == dc.iterations) validate(it + 1, loss);
      if (progress) progress(it + 1, dc.iterations, loss, st_.best);
    }
    return st_;
  }

 private:
  // One Adam step on iteration `it`'s batch; its training loss. NaN or Inf stops the run.
  double step(int64_t it) {
    const DistillConfig& dc = s_.cfg.distill;
    at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(dc.seed + it));
    const at::Tensor idx = at::randperm(dc.trajectories, gen, at::kLong).slice(0, 0, dc.batch_size);
    adam_.zero_grad();
    const at::Tensor loss = student_loss(s_, den_, pred_, train_.index_select(0, idx),
                                         labels_at(s_, [&](const at::Tensor& l) { return l.index_select(0, idx); }));
    const double value = loss.item<double>();
    if (!std::isfinite(value))
      throw InputError("distillation diverged at iteration " + std::to_string(it + 1) + " (training loss " +
                       std::to_string(value) + "); " + file_.path().string() + " keeps the best predictor so far " +
                       "(validation loss " + std::to_string(st_.best) + "); lower distill.lr (now " +
                       std::to_string(dc.lr) + ")");
    loss.backward();
    adam_.step();
    return value;
  }

  // Validation after `run` iterations: the best parameters so far are kept and written.
  void validate(int64_t run, double train_loss) {
    const double v = validation_loss(s_, den_, pred_, val_);
    if (!std::isfinite(v))
      throw InputError("distillation diverged at iteration " + std::to_string(run) + " (validation loss " +
                       std::to_string(v) + "); " + file_.path().string() + " keeps the best predictor so far");
    if (v < st_.best) {
      st_.best = v;
      best_ = copies(params_);
    }
    st_.done = run;
    write_best();
    spdlog::debug("iteration {}: training loss {:.4g}, validation loss {:.4g} (best {:.4g})", run, train_loss, v,
                  st_.best);
  }

  // The file always holds the best parameters: they stand in for the current ones while it
  // is written (in place, so Adam's state stays with its tensors).
  void write_best() {
    at::NoGradGuard no_grad;
    const std::vector<at::Tensor> current = copies(params_);
    for (size_t k = 0; k < params_.size(); ++k) params_[k].copy_(best_[k]);
    file_.write(pred_, st_);
    for (size_t k = 0; k < params_.size(); ++k) params_[k].copy_(current[k]);
  }

  const Setup& s_;
  ModelDenoiser& den_;
  AmedPredictor& pred_;
  const PredictorFile& file_;
  const at::Tensor train_, val_;
  TrainingState st_;
  std::vector<at::Tensor> params_, best_;
  torch::optim::Adam adam_;
};

}  // namespace

json run_distill(const Config& cfg, const fs::path& out, const DistillProgressFn& progress) {
  const auto t_start = Clock::now();
  check_can_write(out);  // before the teacher and the training: a wrong -o is named at once
  const int threads = set_threads(cfg.model.threads);
  const Model model = load_run_model(cfg);
  const Setup s = make_setup(cfg, model);
  ModelDenoiser den(model, s.dtype);
  const PredictorUse use{model.sha256(), s.student.name, s.plan.steps, afs_json(s.cfg.solver, s.plan), s.plan.grid,
                         den.feature_dim(), space_name(s.plan.space),
                         s.cfg.solver.last_interval_name()};
  const json identity = predictor_identity(use, cfg.schedule);
  Start start = start_predictor(cfg.distill, use, out);
  if (!model.has_features())
    spdlog::warn("model {} has no forward_with_features: the predictor sees zero features and learns a fixed step "
                 "schedule", model.path().filename().string());

  const at::Tensor traj = teacher_trajectories(s, den, identity["sigmas"], progress);
  const double teacher_s = seconds_since(t_start);
  const PredictorFile file(s, identity, out, t_start);
  const at::Tensor train = traj.slice(0, 0, cfg.distill.trajectories), val = traj.slice(0, cfg.distill.trajectories);
  const TrainingState first = start.resumed ? *start.resumed : first_validation(s, den, start.pred, val, file);
  const TrainingState last = Trainer(s, den, start.pred, file, train, val, first).run(progress);
  spdlog::info("predictor {}: validation loss {:.4g} (untrained midpoint {:.4g}, ratio {:.3f}) in {:.1f} s "
               "(teacher {:.1f} s), {} threads",
               out.string(), last.best, last.midpoint, last.best / last.midpoint, seconds_since(t_start), teacher_s,
               threads);
  return AmedPredictor::load(out).metadata();
}

}  // namespace diffode
