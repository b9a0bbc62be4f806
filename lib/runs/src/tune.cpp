// `diffode tune`: a time-grid search after GITS (Chen et al., ICML 2024). Teacher
// trajectories run on a fine candidate grid (the config's schedule at K steps, M extra teacher
// points per interval); the local error of one DDIM step (Euler in σ̃, and in a flow model's
// t) from candidate i to candidate j against the teacher's state there is averaged over the
// trajectories into a cost matrix (cached), and dynamic programming picks the N + 1
// candidates of least total cost. The DDIM step needs only D at the teacher's own states,
// which the teacher evaluates anyway: the search costs the teacher's model calls alone.
// Then (tune.refine) coordinate descent moves the chosen points on a 4× finer lattice of the
// same schedule while the solver's own end error to the teacher falls: the proxy knows
// nothing of the solver's order, history or first step, and this measures them directly.
#include "diffode/runs/tune.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <cmath>
#include <limits>

#include "diffode/core/denoiser.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/integrate.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/json_file.hpp"
#include "diffode/runs/sampler.hpp"
#include "diffode/runs/tuned_grid.hpp"
#include "run_dir.hpp"
#include "diffode/version.hpp"
#include "clock.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<int> cheapest_path(const std::vector<std::vector<double>>& cost, int steps) {
  const int k = static_cast<int>(cost.size()) - 1;
  if (steps < 1 || steps > k)
    throw InputError("cannot choose " + std::to_string(steps) + " steps among " + std::to_string(k) +
                     " candidate intervals");
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // best[n][j]: least cost of n steps from candidate 0 to j; from[n][j]: the point before j.
  std::vector<std::vector<double>> best(static_cast<size_t>(steps) + 1, std::vector<double>(cost.size(), kInf));
  std::vector<std::vector<int>> from(best.size(), std::vector<int>(cost.size(), -1));
  best[0][0] = 0;
  for (int n = 1; n <= steps; ++n)
    for (int j = n; j <= k; ++j)
      for (int i = n - 1; i < j; ++i) {
        const double c = best[n - 1][i] + cost[i][j];
        if (c < best[n][j]) {
          best[n][j] = c;
          from[n][j] = i;
        }
      }
  std::vector<int> path(static_cast<size_t>(steps) + 1);
  path[static_cast<size_t>(steps)] = k;
  for (int n = steps; n > 0; --n) path[static_cast<size_t>(n) - 1] = from[n][path[static_cast<size_t>(n)]];
  return path;
}

namespace {


// The denoiser as the teacher calls it, recording D at the candidate σ's: the last call at
// each is the solver's evaluation at its accepted state there (the teacher's x_k).
class Recorder final : public Denoiser {
 public:
  Recorder(Denoiser& inner, const Grid& points) : inner_(inner), points_(points), d_(points.size()) {}
  Tensor denoise(const Tensor& x, double sigma) override {
    Tensor d = inner_.denoise(x, sigma);
    for (size_t k = 0; k < points_.size(); ++k)
      if (same_sigma(sigma, points_[k])) d_[k] = d.clone();
    return d;
  }
  Tensor denoise(const Tensor& x, const Tensor& sigma) override { return inner_.denoise(x, sigma); }
  int64_t feature_dim() const override { return inner_.feature_dim(); }
  const Tensor& at_point(size_t k) const { return d_[k]; }

 private:
  Denoiser& inner_;
  const Grid& points_;
  std::vector<Tensor> d_;
};

// Everything one search works with.
struct Search {
  const Config& cfg;
  const TuneConfig& tc;
  const Model& model;
  StepPlan plan;      // the solver's plan at its NFE on the config's schedule (N, AFS, space)
  SigmaRange range;   // the schedule's σ range (schedule_range, as the plan's)
  Grid candidates;    // the schedule at K steps
  Grid fine;          // the teacher's grid: candidates with M more points per interval
  Space teacher_space;
  std::optional<AfsMeans> afs_means;
  int64_t refine = 0;  // tune.refine resolved
};

// The AFS prediction of D at the first candidate for a batch (plan.afs), as the solver takes it.
Tensor afs_denoised(const Search& s, const Tensor& x0, const Tensor& labels) {
  if (s.afs_means) return s.afs_means->of(labels).reshape({-1, x0.size(1)}).expand_as(x0);
  const double sigma = s.candidates.front();
  if (std::isinf(sigma)) return at::zeros_like(x0);
  return x0 * zero_mean_x0_factor(sigma);
}

// The config's schedule at `steps` steps on the search's σ range: the candidates (K steps)
// and the refinement's lattice (kLattice·K).
Grid schedule_grid(const Search& s, int steps) { return make_grid(s.cfg.schedule, steps, s.range); }

// Adds one batch's summed per-trajectory errors into `sum` ((K+1)², i < j).
// Also writes the teacher's end states (x̃ at the last candidate) into rows first.. of `ends`.
void batch_costs(const Search& s, ModelDenoiser& model_den, int64_t first, int64_t count,
                 std::vector<std::vector<double>>& sum, Tensor& ends) {
  const ModelMeta& meta = s.model.meta();
  const auto dtype = s.cfg.solver.state_dtype();
  const int k = static_cast<int>(s.candidates.size()) - 1, per = (static_cast<int>(s.fine.size()) - 1) / k;
  const Tensor eps = make_noise(s.tc.seed, first, count, meta.sample_shape).to(dtype);
  const std::vector<int64_t> l = sample_labels(s.cfg.sampling.labels, s.tc.seed, meta.num_classes, meta.sample_shape,
                                               first, count);
  const Tensor labels = l.empty() ? Tensor() : at::tensor(l, at::kLong);
  model_den.reset();
  model_den.set_condition(labels.defined() ? labels.to(s.model.device()) : labels, s.cfg.sampling.guidance);
  Recorder den(model_den, s.candidates);
  std::vector<Tensor> x(static_cast<size_t>(k) + 1);  // teacher states [B, P] at the candidates
  x[0] = (std::isinf(s.fine.front()) ? eps : eps * s.fine.front()).reshape({count, -1});
  SolverOptions opt;
  opt.time = s.teacher_space == Space::time ? &meta.process : nullptr;
  integrate(*s.tc.teacher, den, eps, s.fine, opt, false, [&](int j, const Tensor& xj) {
    if ((j + 1) % per == 0) x[static_cast<size_t>((j + 1) / per)] = xj.reshape({count, -1}).clone();  // solvers update x in place
  });
  model_den.check_finite(s.fine);
  const Tensor states = at::stack(x);  // [K+1, B, P]
  ends.slice(0, first, first + count).copy_(x[static_cast<size_t>(k)].to(at::kCPU, at::kFloat));
  // The error is measured in the state scaled to unit variance, x̃/√(1 + σ̃²) (the VP state):
  // there a local error reaches the output with a gain of order one at every σ̃, where in x̃
  // an error at large σ̃ would count σ̃ times too much.
  std::vector<double> scale(s.candidates.size());
  for (size_t j = 0; j < scale.size(); ++j) scale[j] = 1.0 / std::sqrt(1.0 + s.candidates[j] * s.candidates[j]);
  const Tensor scale_t = at::tensor(scale, at::kDouble).to(states.scalar_type()).view({-1, 1, 1});
  for (int i = 0; i < k; ++i) {
    const double si = s.candidates[static_cast<size_t>(i)];
    Tensor d = i == 0 && s.plan.afs ? afs_denoised(s, x[0], labels) : den.at_point(static_cast<size_t>(i));
    if (!d.defined()) throw std::logic_error("teacher " + s.tc.teacher->name + " made no evaluation at a candidate");
    d = d.reshape({count, -1});
    std::vector<double> r;  // DDIM: x̂_j = D_i + (σ_j/σ_i)(x_i − D_i); from σ = inf: D_0 + σ_j ε
    for (int j = i + 1; j <= k; ++j) r.push_back(std::isinf(si) ? s.candidates[static_cast<size_t>(j)]
                                                                : s.candidates[static_cast<size_t>(j)] / si);
    const Tensor rt = at::tensor(r, at::kDouble).to(d.scalar_type()).view({-1, 1, 1});
    const Tensor pred = d.unsqueeze(0) + rt * (std::isinf(si) ? x[0] : x[static_cast<size_t>(i)] - d).unsqueeze(0);
    const Tensor err = ((pred - states.slice(0, i + 1)) * scale_t.slice(0, i + 1)).pow(2).mean(2).sqrt().sum(1);
    const Tensor e = err.to(at::kCPU, at::kDouble).contiguous();
    for (int j = i + 1; j <= k; ++j) sum[static_cast<size_t>(i)][static_cast<size_t>(j)] += e[j - i - 1].item<double>();
  }
}

// The cache key: what determines the cost matrix.
json cost_key(const Search& s) {
  const SamplingConfig& sc = s.cfg.sampling;
  json key = {{"kind", "tune_costs"},
              {"model_sha256", s.model.sha256()},
              {"metadata", s.model.meta().json},
              {"model_dtype", s.cfg.model.dtype},
              {"precision", s.cfg.solver.precision},
              {"candidates", grid_json(s.candidates)},
              {"teacher", {{"name", s.tc.teacher->name}, {"points", s.tc.teacher_points},
                           {"space", space_name(s.teacher_space)}}},
              {"seed", s.tc.seed},
              {"trajectories", s.tc.trajectories},
              {"labels", to_json(sc.labels)},
              {"guidance", sc.guidance},
              {"afs", afs_json(s.cfg.solver, s.plan)},
              {"measure", "ddim_vp_rms"}};
  // From σ̃ = ∞ the costs of earlier versions took D at the first candidate from the wrong
  // evaluation (any σ matched ∞): those caches are not this key's.
  if (std::isinf(s.candidates.front())) key["d_at_infinity"] = "own";
  return key;
}

// What the teacher trajectories give: the cost matrix and their end states [T, P] (float32).
struct Teacher {
  std::vector<std::vector<double>> cost;
  Tensor ends;
};

// The teacher's costs and ends: from the cache (a .json and a .npy under one key), else from
// the teacher trajectories (then cached).
Teacher teacher_run(const Search& s, const TuneProgressFn& progress) {
  const json key = cost_key(s);
  const std::string stem = "tune-" + sha256_hex(key.dump()).substr(0, 24);
  const fs::path file = cache_dir() / (stem + ".json"), ends_file = cache_dir() / (stem + ".ends.npy");
  const int64_t total = s.tc.trajectories, dim = at::ones(s.model.meta().sample_shape).numel();
  if (fs::exists(file) && fs::exists(ends_file)) {
    const json cached = read_json_file(file);
    NpyArray ends = read_npy(ends_file);
    if (cached.is_object() && cached.value("key", json()) == key && ends.shape == std::vector<int64_t>{total, dim}) {
      spdlog::info("teacher costs and ends from the cache {}", file.string());
      if (progress) progress(0, 0);
      return {cached.at("cost").get<std::vector<std::vector<double>>>(),
              at::from_blob(ends.data.data(), {total, dim}, at::kFloat).clone()};
    }
  }
  const size_t n = s.candidates.size();
  Teacher t{std::vector<std::vector<double>>(n, std::vector<double>(n, 0.0)), at::empty({total, dim}, at::kFloat)};
  ModelDenoiser den(s.model, s.cfg.solver.state_dtype());
  const int64_t batch = s.cfg.sampling.batch_size;
  for (int64_t first = 0; first < total; first += batch) {
    batch_costs(s, den, first, std::min(batch, total - first), t.cost, t.ends);
    if (progress) progress(std::min(first + batch, total), total);
  }
  for (auto& row : t.cost)
    for (double& c : row) c /= static_cast<double>(total);
  try {
    std::error_code ec;
    fs::create_directories(cache_dir(), ec);
    write_npy(ends_file, {total, dim}, t.ends.data_ptr<float>());
    write_file_atomic(file, json({{"key", key}, {"cost", t.cost}}).dump() + "\n");
  } catch (const std::exception& e) {
    spdlog::warn("teacher costs not cached ({})", e.what());
  }
  return t;
}

double path_cost(const std::vector<std::vector<double>>& cost, const std::vector<int>& path) {
  double c = 0;
  for (size_t n = 1; n < path.size(); ++n) c += cost[static_cast<size_t>(path[n - 1])][static_cast<size_t>(path[n])];
  return c;
}

// The solver's own end error on `grid`, as sampling runs it (order, history, AFS, space):
// the RMS over the first tune.refine teacher trajectories of its sample against the
// teacher's end, the measure `compare` takes against its reference.
double end_error(const Search& s, ModelDenoiser& den, const Grid& grid, const Tensor& ends) {
  const ModelMeta& meta = s.model.meta();
  const auto dtype = s.cfg.solver.state_dtype();
  const int64_t total = s.refine, batch = s.cfg.sampling.batch_size;
  double sq = 0;
  for (int64_t first = 0; first < total; first += batch) {
    const int64_t count = std::min(batch, total - first);
    const Tensor eps = make_noise(s.tc.seed, first, count, meta.sample_shape)
                           .to(at::TensorOptions().dtype(dtype).device(s.model.device()));
    const std::vector<int64_t> l = sample_labels(s.cfg.sampling.labels, s.tc.seed, meta.num_classes,
                                                 meta.sample_shape, first, count);
    const Tensor labels = l.empty() ? Tensor() : at::tensor(l, at::kLong);
    den.reset();
    den.set_condition(labels.defined() ? labels.to(s.model.device()) : labels, s.cfg.sampling.guidance);
    const SolverOptions opt{s.plan.afs, s.cfg.solver.max_order, nullptr,
                            s.plan.space == Space::time ? &meta.process : nullptr,
                            s.afs_means ? s.afs_means->of(labels) : Tensor()};
    const Tensor x = integrate(s.cfg.solver.info(), den, eps, grid, opt, s.cfg.schedule.denoise_to_zero);
    const Tensor e = x.reshape({count, -1}).to(at::kCPU, at::kDouble) - ends.slice(0, first, first + count).to(at::kDouble);
    sq += e.pow(2).sum().item<double>();
  }
  return std::sqrt(sq / static_cast<double>(total * ends.size(1)));
}

// One pass over the interior points of `indices`: each moves by ±step, on in one direction
// while `error` falls below `best`. True when any point moved.
bool sweep(int step, std::vector<int>& indices, double& best, const std::function<double(const std::vector<int>&)>& error) {
  bool any = false;
  for (size_t n = 1; n + 1 < indices.size(); ++n)
    for (int dir : {-step, step}) {
      bool moved = false;
      for (;;) {
        std::vector<int> q = indices;
        q[n] += dir;
        if (q[n] <= q[n - 1] || q[n] >= q[n + 1]) break;
        const double e = error(q);
        if (!(e < best)) break;
        best = e;
        indices = std::move(q);
        moved = any = true;
      }
      if (moved) break;  // the other direction was worse
    }
  return any;
}

struct Refined {
  std::vector<int> indices;  // on the lattice
  Grid grid;
  double before = 0, after = 0;
  int evaluations = 0;
};

// Stage 3: coordinate descent from the DP's grid on the schedule at kLattice·K steps (which
// holds the candidates): the interior points move by 4, then 2, then 1 lattice points (one
// pass each) while the solver's own end error falls. It measures what the DDIM proxy
// cannot: the solver's order, its history and its first step as sampling takes them.
constexpr int kLattice = 4;
Refined refine(const Search& s, const std::vector<int>& path, const Tensor& ends) {
  const Grid lattice = schedule_grid(s, kLattice * s.tc.points);
  auto grid_of = [&](const std::vector<int>& q) {
    Grid g;
    for (int i : q) g.push_back(lattice[static_cast<size_t>(i)]);
    return g;
  };
  Refined r;
  for (int i : path) r.indices.push_back(kLattice * i);
  if (!passes_through(lattice, s.candidates))
    throw std::logic_error("schedule '" + s.cfg.schedule.schedule->name + "' at " +
                           std::to_string(kLattice * s.tc.points) + " steps does not hold its candidates");
  ModelDenoiser den(s.model, s.cfg.solver.state_dtype());
  r.before = r.after = end_error(s, den, grid_of(r.indices), ends);
  r.evaluations = 1;
  const auto error = [&](const std::vector<int>& q) {
    ++r.evaluations;
    return end_error(s, den, grid_of(q), ends);
  };
  for (int step : {4, 2, 1}) {
    sweep(step, r.indices, r.after, error);  // more passes measured no better on fmnist_flow
    spdlog::info("refined with moves of {} lattice points: end RMSE {:.5g} (the DP's grid: {:.5g}), {} solver runs",
                 step, r.after, r.before, r.evaluations);
  }
  r.grid = grid_of(r.indices);
  return r;
}

// Stage 0: the plan to tune for and the grids, every check made.
Search make_search(const Config& cfg, const Model& model) {
  static const TuneConfig defaults;
  const TuneConfig& tc = cfg.tune ? *cfg.tune : defaults;
  check_conditioning(cfg, model);
  if (fixed_steps(cfg.schedule) || cfg.schedule.schedule->takes("path") || cfg.schedule.schedule->takes("sigmas") ||
      picks_timesteps(cfg.schedule))
    throw ConfigError(cfg.source, "/schedule/name",
                      "tune picks points of a schedule given by a formula (polynomial, logsnr, time_uniform, "
                      "vp_time), got '" + cfg.schedule.schedule->name + "'");
  const ModelMeta& meta = model.meta();
  Search s{cfg, tc, model, plan_run(cfg, model), schedule_range(cfg, model), {}, {},
           default_space(*tc.teacher, meta.process), std::nullopt, 0};
  if (s.plan.steps > tc.points)
    throw ConfigError(cfg.source, "/tune/points",
                      "the plan has " + std::to_string(s.plan.steps) + " steps, more than the " +
                          std::to_string(tc.points) + " candidate intervals; raise tune.points");
  s.candidates = schedule_grid(s, tc.points);
  try {
    s.fine = refine_grid(s.candidates, tc.teacher_points, cfg.schedule, s.range);
  } catch (const InputError& e) {
    throw ConfigError(cfg.source, "/tune/teacher_points", e.what());
  }
  s.refine = tc.refine.value_or(std::min<int64_t>(128, tc.trajectories));
  if (s.refine > tc.trajectories)
    throw ConfigError(cfg.source, "/tune/refine",
                      "refines on the first " + std::to_string(s.refine) + " teacher trajectories, but there are " +
                          std::to_string(tc.trajectories) + " (tune.trajectories)");
  if (cfg.solver.afs == Afs::mean) s.afs_means = afs_means(cfg, model, s.candidates.front());
  return s;
}

// Never replaces a file that is not a tuned grid (diffode wrote it).
void check_output(const fs::path& out) {
  check_can_write(out, OutputFolder::created);  // before the teacher runs: a wrong -o is named at once
  if (!fs::exists(out)) return;
  json old;
  try {
    old = read_json_file(out);
  } catch (const InputError&) {
  }
  if (!old.is_object() || old.value("kind", json()) != "diffode_tuned_grid")
    throw InputError(out.string() + " exists and is not a tuned grid diffode wrote: choose another output (-o)");
}

}  // namespace

json run_tune(const Config& cfg, const fs::path& out, const TuneProgressFn& progress) {
  const auto t0 = Clock::now();
  check_output(out);
  set_threads(cfg.model.threads);
  const Model model = load_run_model(cfg);
  const Search s = make_search(cfg, model);
  const int n = s.plan.steps, k = s.tc.points;
  spdlog::info("tuning {} at {} NFE ({} steps{}, {}): {} of {} candidates of '{}', teacher {} with {} extra points, "
               "{} trajectories", cfg.solver.info().name, s.plan.nfe, n, s.plan.afs ? ", afs" : "",
               space_name(s.plan.space), n + 1, k + 1, cfg.schedule.schedule->name, s.tc.teacher->name,
               s.tc.teacher_points, s.tc.trajectories);
  const Teacher teacher = teacher_run(s, progress);
  const std::vector<std::vector<double>>& cost = teacher.cost;
  const std::vector<int> path = cheapest_path(cost, n);
  Grid grid;
  for (int i : path) grid.push_back(s.candidates[static_cast<size_t>(i)]);
  json refined = nullptr;
  if (s.refine > 0 && cfg.solver.info().learned) {
    spdlog::info("no refinement for {}: its end error needs a predictor, which is distilled on the grid",
                 cfg.solver.info().name);
  } else if (s.refine > 0) {
    spdlog::info("DP grid {}; refining it by {}'s own end error on {} trajectories", grid_json(grid).dump(),
                 cfg.solver.info().name, s.refine);
    const Refined r = refine(s, path, teacher.ends);
    grid = r.grid;
    refined = {{"trajectories", s.refine},
               {"lattice_points", kLattice * k},
               {"indices", r.indices},
               {"solver_runs", r.evaluations},
               {"end_rmse", {{"dp_grid", r.before}, {"refined", r.after}}}};
  }
  json per_step = json::array();
  for (size_t i = 1; i < path.size(); ++i)
    per_step.push_back(cost[static_cast<size_t>(path[i - 1])][static_cast<size_t>(path[i])]);
  json own = nullptr;  // the schedule's own N-step grid, when it is among the candidates
  if (k % n == 0) {
    std::vector<int> even;
    for (int i = 0; i <= n; ++i) even.push_back(i * (k / n));
    own = path_cost(cost, even);
  }
  const ModelMeta& meta = model.meta();
  json rec = {{"kind", "diffode_tuned_grid"},
              {"diffode_version", kVersion},
              {"model_sha256", model.sha256()},
              {"model_path", model.path().string()},
              {"solver", cfg.solver.info().name},
              {"max_order", tuned_max_order(cfg.solver)},
              {"nfe", s.plan.nfe},
              {"steps", n},
              {"afs", afs_json(cfg.solver, s.plan)},
              {"space", space_name(s.plan.space)},
              {"guidance", cfg.sampling.guidance},
              {"labels", to_json(cfg.sampling.labels)},
              {"sigmas", grid_json(grid)},
              {"candidates", {{"schedule", to_json(cfg)["schedule"]}, {"points", k}, {"indices", path}}},
              {"teacher", {{"name", s.tc.teacher->name}, {"points", s.tc.teacher_points},
                           {"space", space_name(s.teacher_space)},
                           {"nfe", count_nfe(*s.tc.teacher, s.fine,
                                             {false, 0, nullptr, s.teacher_space == Space::time ? &meta.process : nullptr},
                                             false)}}},
              {"trajectories", s.tc.trajectories},
              {"seed", s.tc.seed},
              {"cost", {{"measure", "mean over trajectories of the RMS error of one DDIM step between candidates, in "
                                    "x/sqrt(1 + sigma^2)"},
                        {"tuned", path_cost(cost, path)},
                        {"per_step", per_step},
                        {"schedule_own_grid", own}}},
              {"refine", refined},
              {"seconds", seconds_since(t0)}};
  fs::create_directories(out.parent_path().empty() ? fs::path(".") : out.parent_path());
  write_file_atomic(out, rec.dump(2) + "\n");
  spdlog::info("tuned grid {}: DP summed step error {:.4g}{}", grid_json(grid).dump(), path_cost(cost, path),
               own.is_null() ? "" : fmt::format(" (the schedule's own {}-step grid: {:.4g})", n, own.get<double>()));
  return rec;
}

}  // namespace diffode
