// `diffode compare`: every compared solver at every NFE on the same seeds, measured against
// one reference solution that is cached on disk and checked against half its steps. In
// stages: the reference; the cells (every one planned, then each sampled and measured, or
// kept from cells/); the reports (compare.json, compare.csv, compare_grid.png, error_vs_nfe).
#include "diffode/runs/compare.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include "diffode/core/denoiser.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/png.hpp"
#include "diffode/io/json_file.hpp"
#include "diffode/core/quality.hpp"
#include "diffode/runs/sampler.hpp"
#include "images.hpp"
#include "plot.hpp"
#include "run_dir.hpp"
#include "clock.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- rows as JSON

namespace {

template <class T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

template <class T>
std::optional<T> optional_at(const json& j, const char* key) {
  const json& v = j.at(key);
  if (v.is_null()) return std::nullopt;
  return v.get<T>();
}

// What cells/ keeps of a measured row: the row less its label, target and note.
json measured_json(const CompareRow& r) {
  json j = {{"solver", or_null(r.solver)}, {"nfe", or_null(r.nfe)}, {"steps", or_null(r.steps)},
            {"afs", r.afs}, {"space", or_null(r.space)}, {"schedule", or_null(r.schedule)}, {"rmse", or_null(r.rmse)}, {"max_err", or_null(r.max_err)},
            {"psnr", or_null(r.psnr)}, {"frechet_distance", or_null(r.frechet_distance)}, {"time_s", or_null(r.time_s)}};
  if (r.predictor) j["predictor"] = *r.predictor;
  return j;
}

// The inverse of measured_json (json::exception when `j` holds something else).
void read_measured(const json& j, CompareRow& r) {
  r.solver = optional_at<std::string>(j, "solver");
  r.nfe = optional_at<int>(j, "nfe");
  r.steps = optional_at<int>(j, "steps");
  r.afs = j.at("afs");
  r.space = optional_at<std::string>(j, "space");
  r.schedule = optional_at<std::string>(j, "schedule");
  r.rmse = optional_at<double>(j, "rmse");
  r.max_err = optional_at<double>(j, "max_err");
  r.psnr = optional_at<double>(j, "psnr");
  r.frechet_distance = optional_at<double>(j, "frechet_distance");
  r.time_s = optional_at<double>(j, "time_s");
  r.predictor = j.contains("predictor") ? optional_at<std::string>(j, "predictor") : std::nullopt;
}

// The reference cache file's "info" (and compare.json's "reference" without cache and FD).
json to_json(const ReferenceInfo& r) {
  const ReferenceInfo::Convergence& c = r.convergence;
  return {{"solver", r.solver},
          {"steps", r.steps},
          {"nfe", r.nfe},
          {"seconds", r.seconds},
          {"convergence", {{"half_steps", c.half_steps}, {"half_nfe", c.half_nfe}, {"rmse", c.rmse}, {"max_err", c.max_err}}}};
}

// The inverse of to_json(ReferenceInfo) (json::exception when `j` holds something else).
ReferenceInfo reference_info_of(const json& j) {
  ReferenceInfo r;
  r.solver = j.at("solver").get<std::string>();
  r.steps = j.at("steps").get<int>();
  r.nfe = j.at("nfe").get<int>();
  r.seconds = j.at("seconds").get<double>();
  const json& c = j.at("convergence");
  r.convergence = {c.at("half_steps").get<int>(), c.at("half_nfe").get<int>(), c.at("rmse").get<double>(),
                   c.at("max_err").get<double>()};
  return r;
}

}  // namespace

json to_json(const CompareRow& row) {
  json j = measured_json(row);
  j["label"] = row.label;
  j["target_nfe"] = row.target_nfe;
  if (row.status != CompareRow::Status::ok || !row.note.empty()) j["note"] = row.note;
  return j;
}

json to_json(const CompareResult& c) {
  json reference = to_json(c.reference);
  reference["cache"] = c.reference_cache;
  if (c.reference_frechet_distance) reference["frechet_distance"] = *c.reference_frechet_distance;
  json rows = json::array();
  for (const auto& r : c.rows) rows.push_back(to_json(r));
  return {{"config", c.config},
          {"model", {{"path", c.model_path}, {"sha256", c.model_sha256}}},
          {"seeds", {{"first", c.seeds.first}, {"count", c.seeds.count}}},
          {"reference", reference},
          {"threads", c.threads},
          {"cells", rows}};
}

// ---------------------------------------------------------------- sampling and measuring

namespace {


// The base config with its solver replaced by `solver` at `nfe` or `steps` ("{nfe}" in a
// predictor path becomes the NFE).
Config solver_config(const Config& base, SolverConfig solver, std::optional<int> nfe, std::optional<int> steps) {
  Config c = base;
  c.compare.reset();
  solver.nfe = nfe;
  solver.steps = steps;
  if (nfe && solver.predictor) solver.predictor = with_nfe(solver.predictor->string(), *nfe);
  c.solver = std::move(solver);
  return c;
}

// All samples of a job, batch by batch, as one float32 tensor.
at::Tensor sample_all(const SampleJob& job) {
  const int64_t n = job.config().sampling.num_samples, batch = job.config().sampling.batch_size;
  std::vector<at::Tensor> parts;
  for (int64_t first = 0; first < n; first += batch) parts.push_back(job.sample(first, std::min(batch, n - first)));
  return at::cat(parts);
}

struct Errors {
  double rmse, max_err, psnr;  // psnr: +inf when equal
};
Errors errors_of(const at::Tensor& x, const at::Tensor& ref, double data_span) {
  const at::Tensor d = x.to(at::kDouble) - ref.to(at::kDouble);
  const double rmse = std::sqrt(d.square().mean().item<double>());
  return {rmse, d.abs().max().item<double>(), 20 * std::log10(data_span / rmse)};
}

void save_tensor(const fs::path& path, const at::Tensor& x) {
  const at::Tensor c = x.to(at::kFloat).contiguous();
  write_npy(path, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
}

at::Tensor load_tensor(const fs::path& path) {
  NpyArray a = read_npy(path);
  return at::tensor(a.data, at::kFloat).view(a.shape);
}

// What binds a cached record to its key: the first 32 hex digits of the sha256 of the key,
// the values recorded beside it and the samples (shape and float32 values) it keeps.
std::string record_digest(const json& key, const json& values, const at::Tensor& samples) {
  const at::Tensor c = samples.to(at::kFloat).contiguous();
  std::string text = key.dump() + "\n" + values.dump() + "\n" + json(c.sizes().vec()).dump() + "\n";
  text.append(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<size_t>(c.numel()) * sizeof(float));
  return sha256_hex(text).substr(0, 32);
}

// The samples of a cached record when its digest matches them, its key and values; none
// when anything differs or does not read (then it is computed again).
std::optional<at::Tensor> verified_samples(const json& record, const json& key, const char* values,
                                           const fs::path& npy) {
  if (!record.is_object() || record.value("key", json()) != key || !record.contains(values) ||
      !record.value("digest", json()).is_string())
    return std::nullopt;
  try {
    at::Tensor x = load_tensor(npy);
    if (record_digest(key, record[values], x) == record["digest"].get<std::string>()) return x;
  } catch (const std::exception&) {  // missing or not an .npy: computed again
  }
  return std::nullopt;
}

// What every cell (and the reference's FD) is measured against.
struct Yardstick {
  at::Tensor reference;          // the reference's samples
  const Evaluation* eval;        // the config's `eval`; null without
  std::vector<int64_t> labels;   // the samples' labels (empty: none), for the FD
  int64_t num_classes;
  double data_span;              // data_hi − data_lo, for the PSNR

  Errors errors(const at::Tensor& x) const { return errors_of(x, reference, data_span); }
  // FD of samples x to the reference statistics of `eval`; none without `eval`.
  std::optional<double> frechet(const at::Tensor& x) const {
    if (!eval) return std::nullopt;
    const QualityMeter meter = measure_quality(eval->features, SampleSet{x, labels, num_classes}, 250);
    return frechet_distance(meter.stats(), eval->reference.stats);
  }
};

}  // namespace

// ---------------------------------------------------------------- stage 1: the reference

namespace {

struct Reference {
  at::Tensor samples;
  ReferenceInfo info;
  fs::path cache;  // reference-<hash>.npy in the cache folder
};

// The reference solver at `steps` (float64 state, no AFS) on the config's schedule and seeds.
SampleJob reference_job(const Config& cfg, const Model& model, int steps) {
  const ReferenceConfig& rc = cfg.compare->reference;
  SolverConfig solver;
  solver.solver = rc.solver;
  solver.precision = "float64";
  try {
    return SampleJob(solver_config(cfg, solver, std::nullopt, steps), model);
  } catch (const InputError& e) {
    throw ConfigError(cfg.source, "/compare/reference",
                      rc.solver->name + " at " + std::to_string(steps) + " steps: " + e.what());
  }
}

// The cache key: what determines the reference samples (not batching, threads or outputs).
json reference_key(const SampleJob& full) {
  json key = full.identity();
  for (const char* p : {"/config/output", "/config/compare", "/config/eval", "/config/distill", "/config/tune",
                        "/config/sampling/batch_size", "/config/model/threads", "/model/path", "/diffode_version"}) {
    const json::json_pointer ptr(p);
    if (key.contains(ptr)) key[ptr.parent_pointer()].erase(ptr.back());
  }
  return key;
}

// The reference from the cache when its file there has this key (and reads) and the samples are there.
bool read_cached_reference(const fs::path& info_file, const json& key, Reference& ref) {
  const json cached = read_json_file(info_file);
  const std::optional<at::Tensor> samples = verified_samples(cached, key, "info", ref.cache);
  if (!samples) {
    if (cached.is_object()) spdlog::info("the cached reference {} does not match its key: computed again", ref.cache.string());
    return false;
  }
  try {
    ref.info = reference_info_of(cached.at("info"));
  } catch (const json::exception&) {
    return false;  // not what this version writes: computed again
  }
  ref.samples = *samples;
  spdlog::info("reference from the cache {}", ref.cache.string());
  return true;
}

// The reference sampled at its steps and at half of them, and the distance between the two.
void compute_reference(const ReferenceConfig& rc, const SampleJob& full, const SampleJob& coarse, double data_span,
                       Reference& ref) {
  const int half = rc.steps / 2;
  spdlog::info("reference: {} at {} steps ({} NFE), checked against {} steps", rc.solver->name, rc.steps,
               full.plan().nfe, half);
  const auto t0 = Clock::now();
  ref.samples = sample_all(full);
  ref.info.seconds = seconds_since(t0);
  const Errors e = errors_of(sample_all(coarse), ref.samples, data_span);
  ref.info.solver = rc.solver->name;
  ref.info.steps = rc.steps;
  ref.info.nfe = full.plan().nfe;
  ref.info.convergence = {half, coarse.plan().nfe, e.rmse, e.max_err};
}

// Writes the reference into the cache; a cache that cannot be written only warns (the next
// comparison computes the reference again).
void cache_reference(const fs::path& info_file, const json& key, const Reference& ref) {
  try {
    std::error_code ec;
    fs::create_directories(cache_dir(), ec);
    save_tensor(ref.cache, ref.samples);
    const json info = to_json(ref.info);
    write_file_atomic(info_file,
                      json({{"key", key}, {"info", info}, {"digest", record_digest(key, info, ref.samples)}}).dump(2) + "\n");
  } catch (const std::exception& e) {
    spdlog::warn("reference not cached ({})", e.what());
  }
}

// Refuses a reference that moved more than its tolerance from half its steps.
void check_converged(const Config& cfg, const ReferenceInfo& info) {
  const ReferenceConfig& rc = cfg.compare->reference;
  const std::string& name = rc.solver->name;
  const int steps = rc.steps, half = steps / 2;
  const double moved = info.convergence.rmse;
  spdlog::info("reference {} at {} steps: RMSE {:.3g} to {} steps (tolerance {:.3g})", name, steps, moved, half,
               rc.tolerance);
  if (!(moved <= rc.tolerance))
    throw InputError(cfg.source + ": /compare/reference: " + name + " at " + std::to_string(steps) +
                     " steps has not converged: it differs from " + std::to_string(half) + " steps by RMSE " +
                     fmt::format("{:.4g}", moved) + " > tolerance " + fmt::format("{:.4g}", rc.tolerance) +
                     "; raise compare.reference.steps (or the tolerance)");
}

// The reference solution: from the cache, else sampled (with its half-step check) and cached.
Reference reference_solution(const Config& cfg, const Model& model) {
  const ReferenceConfig& rc = cfg.compare->reference;
  const SampleJob full = reference_job(cfg, model, rc.steps), coarse = reference_job(cfg, model, rc.steps / 2);
  const json key = reference_key(full);
  const std::string name = "reference-" + sha256_hex(key.dump()).substr(0, 24);
  const fs::path info_file = cache_dir() / (name + ".json");
  Reference ref;
  ref.cache = cache_dir() / (name + ".npy");
  if (!read_cached_reference(info_file, key, ref)) {
    compute_reference(rc, full, coarse, model.meta().data_hi - model.meta().data_lo, ref);
    cache_reference(info_file, key, ref);
  }
  check_converged(cfg, ref.info);
  return ref;
}

}  // namespace

// ---------------------------------------------------------------- stage 2: the cells

namespace {

// One (solver, target NFE) cell: its config at the largest reachable NFE <= target.
struct Cell {
  size_t solver;  // index in compare.solvers
  std::string label;
  int target;
  std::optional<SampleJob> job;  // none when no NFE <= target is reachable
  std::string why;               // ... and why
};

Cell plan_cell(const Config& cfg, const Model& model, size_t index, int target) {
  const ComparedSolver& solver = cfg.compare->solvers[index];
  Cell cell{index, solver.name(), target, std::nullopt, ""};
  const std::string where = "/compare/solvers/" + std::to_string(index);
  auto fail = [&](int nfe, const std::string& what) {
    throw InputError(cfg.source + ": /compare/solvers: " + cell.label + " at NFE " + std::to_string(nfe) + ": " + what);
  };
  for (int nfe = target; nfe >= 1; --nfe) {
    Config c = solver_config(cfg, solver.solver, nfe, std::nullopt);
    try {
      c.schedule = compare_schedule(cfg, solver, nfe, where);
      plan_run(c, model);
    } catch (const ConfigError& e) {
      if (e.pointer() != "/solver/nfe") fail(nfe, e.what());  // not a question of the NFE: the cell is wrong
      if (nfe == target) cell.why = e.what();
      continue;
    }
    try {
      cell.job.emplace(c, model);
    } catch (const InputError& e) {
      fail(nfe, e.what());
    }
    return cell;
  }
  return cell;
}

// Every cell, solver by solver at each target NFE, planned (and its files checked) before
// anything is sampled: a bad cell stops the comparison before it costs time.
std::vector<Cell> plan_cells(const Config& cfg, const Model& model) {
  std::vector<Cell> cells;
  for (size_t i = 0; i < cfg.compare->solvers.size(); ++i)
    for (int target : cfg.compare->nfe) cells.push_back(plan_cell(cfg, model, i, target));
  return cells;
}

// cells/: each measured cell's row (.json) and first `shown` samples (.npy, the grid's row)
// under the identity of what was sampled against which reference, so that a re-run keeps it.
struct CellStore {
  fs::path dir;
  std::string reference_cache;
  int64_t shown;

  // "<solver index>-<label>@<nfe>": the index keeps labels that look alike on disk apart.
  static std::string name(size_t solver, const std::string& label, int nfe) {
    return std::to_string(solver) + "-" + safe_file_name(label) + "@" + std::to_string(nfe);
  }
  fs::path file(const std::string& name, const char* ext) const { return dir / (name + ext); }
  json identity(const SampleJob& job) const {
    return {{"run", job.identity()}, {"reference", reference_cache}, {"shown", shown}};
  }
  // The row kept for `job`, read into `row`; false when none matches (or it does not read).
  bool read(const std::string& name, const SampleJob& job, CompareRow& row) const {
    json earlier = read_json_file(file(name, ".json"));
    if (!earlier.is_object() || !earlier.contains("identity")) return false;
    earlier["key"] = earlier["identity"];
    if (!verified_samples(earlier, identity(job), "result", file(name, ".npy"))) {
      spdlog::info("{} does not match what it is kept for: sampled again", file(name, ".json").string());
      return false;
    }
    CompareRow kept = row;
    try {
      read_measured(earlier.at("result"), kept);
    } catch (const json::exception&) {
      return false;  // not what this version writes: sampled again
    }
    row = std::move(kept);
    return true;
  }
  void write(const std::string& name, const SampleJob& job, const CompareRow& row, const at::Tensor& x) const {
    const at::Tensor kept = x.slice(0, 0, shown);
    const json id = identity(job), result = measured_json(row);
    save_tensor(file(name, ".npy"), kept);
    write_file_atomic(file(name, ".json"),
                      json({{"identity", id}, {"result", result}, {"digest", record_digest(id, result, kept)}}).dump(2) + "\n");
  }
  at::Tensor samples(const std::string& name) const { return load_tensor(file(name, ".npy")); }
};

// A cell's row before it is measured: its solver at the planned NFE (when one is reachable).
CompareRow planned_row(const Cell& cell) {
  CompareRow row;
  row.label = cell.label;
  row.target_nfe = cell.target;
  if (cell.job) {
    const StepPlan& plan = cell.job->plan();
    row.solver = cell.job->solver().name;
    row.nfe = plan.nfe;
    row.steps = plan.steps;
    row.afs = afs_json(cell.job->config().solver, plan);
    row.space = space_name(plan.space);
    row.schedule = cell.job->config().schedule.schedule->name;
  }
  return row;
}

// Samples the job into `row` and measures it; NaN/Inf from the model makes the row diverged
// (the cell's result, not the comparison's end). The samples, none when diverged.
std::optional<at::Tensor> sample_and_measure(const SampleJob& job, const Yardstick& yardstick, CompareRow& row) {
  const auto t0 = Clock::now();
  at::Tensor x;
  try {
    x = sample_all(job);
  } catch (const NonFiniteError& e) {
    row.status = CompareRow::Status::diverged;
    row.time_s = seconds_since(t0);
    row.note = std::string("diverged: ") + e.what();
    spdlog::warn("{} at NFE {}: diverged ({})", row.label, job.plan().nfe, e.what());
    return std::nullopt;
  }
  row.time_s = seconds_since(t0);
  const Errors e = yardstick.errors(x);
  row.rmse = e.rmse;
  row.max_err = e.max_err;
  if (std::isfinite(e.psnr)) row.psnr = e.psnr;
  row.frechet_distance = yardstick.frechet(x);
  if (const auto& p = job.config().solver.predictor) row.predictor = p->string();
  spdlog::info("{} at NFE {}: RMSE {:.4g}, max error {:.4g}{} ({:.2f} s)", row.label, job.plan().nfe, e.rmse, e.max_err,
               row.frechet_distance ? fmt::format(", FD {:.2f}", *row.frechet_distance) : "", *row.time_s);
  return x;
}

// A cell's row: unreachable, kept from cells/, or sampled and measured (and kept unless it diverged).
CompareRow measure_cell(const Cell& cell, const Yardstick& yardstick, const CellStore& store) {
  CompareRow row = planned_row(cell);
  if (!cell.job) {
    row.status = CompareRow::Status::unreachable;
    row.note = cell.why;
    spdlog::warn("{} at NFE {}: no reachable NFE at or below it ({})", cell.label, cell.target, cell.why);
    return row;
  }
  const SampleJob& job = *cell.job;
  const std::string name = CellStore::name(cell.solver, cell.label, job.plan().nfe);
  if (store.read(name, job, row)) {
    spdlog::info("{} at NFE {}: kept from {}", cell.label, job.plan().nfe, store.file(name, ".json").string());
  } else {
    const std::optional<at::Tensor> x = sample_and_measure(job, yardstick, row);
    if (!x) return row;  // diverged: not kept in cells/, a re-run samples it again
    store.write(name, job, row, *x);
  }
  if (job.plan().nfe != cell.target) row.note = "NFE " + std::to_string(cell.target) + " is not reachable";
  return row;
}

}  // namespace

// ---------------------------------------------------------------- stage 3: the reports

namespace {

// Rows of images (reference first, then each cell) with their labels on the left.
Image labelled_rows(const std::vector<std::pair<std::string, at::Tensor>>& rows, double lo, double hi) {
  const at::Tensor& first = rows.front().second;
  const int h = static_cast<int>(first.size(-2)), w = static_cast<int>(first.size(-1));
  const int factor = std::max(1, (40 + h - 1) / h), scale = h * factor >= 40 ? 2 : 1, pad = 4;
  int label_w = 0;
  for (const auto& r : rows) label_w = std::max(label_w, text_width(r.first, scale));
  label_w += 3 * pad;
  const int cols = static_cast<int>(first.size(0)), cell_w = w * factor, cell_h = h * factor;
  Image out{label_w + cols * (cell_w + pad) + pad, pad + static_cast<int>(rows.size()) * (cell_h + pad), 3, {}};
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  for (size_t r = 0; r < rows.size(); ++r) {
    const int y0 = pad + static_cast<int>(r) * (cell_h + pad);
    draw_text(out, pad, y0 + cell_h / 2 - 4 * scale, rows[r].first, scale);
    for (int c = 0; c < cols && c < rows[r].second.size(0); ++c) {
      const Image img = enlarge_rgb(to_image(rows[r].second[c], lo, hi), factor);
      const int x0 = label_w + c * (cell_w + pad);
      for (int y = 0; y < cell_h; ++y)
        std::copy_n(&img.pixels[static_cast<size_t>(y) * cell_w * 3], cell_w * 3,
                    &out.pixels[(static_cast<size_t>(y0 + y) * out.width + x0) * 3]);
    }
  }
  return out;
}

// compare_grid.png's rows: the reference, then each distinct solver@NFE that was measured.
std::vector<std::pair<std::string, at::Tensor>> grid_rows(const CompareConfig& cc, const std::vector<CompareRow>& rows,
                                                          const at::Tensor& reference, const CellStore& store) {
  std::vector<std::pair<std::string, at::Tensor>> grid = {
      {"reference " + cc.reference.solver->name + " " + std::to_string(cc.reference.steps) + " steps", reference}};
  std::set<std::string> drawn;  // targets that fell back to one NFE show once
  for (const auto& r : rows) {
    if (r.status != CompareRow::Status::ok) continue;
    const auto solver = std::find_if(cc.solvers.begin(), cc.solvers.end(), [&](const auto& s) { return s.name() == r.label; });
    const std::string name = CellStore::name(static_cast<size_t>(solver - cc.solvers.begin()), r.label, *r.nfe);
    if (drawn.insert(name).second) grid.emplace_back(r.label + " @" + std::to_string(*r.nfe), store.samples(name));
  }
  return grid;
}

std::string csv_of(const std::vector<CompareRow>& rows) {
  std::ostringstream out;
  const std::vector<std::string> cols = {"label", "solver", "target_nfe", "nfe", "steps", "afs", "space", "schedule",
                                         "rmse", "max_err", "psnr", "frechet_distance", "time_s", "note"};
  for (size_t i = 0; i < cols.size(); ++i) out << (i ? "," : "") << cols[i];
  out << "\n";
  for (const auto& row : rows) {
    const json c = to_json(row);
    for (size_t i = 0; i < cols.size(); ++i) out << (i ? "," : "") << csv_field(c.value(cols[i], json()));
    out << "\n";
  }
  return out.str();
}

// RMSE against NFE, one series per compared solver, of the measured rows.
void plot_error_vs_nfe(const Config& cfg, const std::vector<CompareRow>& rows, const fs::path& out_dir) {
  std::vector<PlotSeries> series;
  for (const auto& solver : cfg.compare->solvers) {
    PlotSeries s{solver.name(), {}, {}};
    for (const auto& r : rows)
      if (r.label == s.label && r.rmse) {
        s.x.push_back(*r.nfe);
        s.y.push_back(*r.rmse);
      }
    series.push_back(std::move(s));
  }
  plot_loglog(series, "NFE (model evaluations)", "RMSE to the reference",
              fs::path(cfg.source).stem().string() + ": error against NFE", out_dir / "error_vs_nfe.svg",
              out_dir / "error_vs_nfe.png");
}

// compare.json, compare.csv, compare_grid.png (images only; its tEXt chunk holds compare.json)
// and the error-against-NFE plot.
void write_reports(const Config& cfg, const CompareResult& result, const ModelMeta& meta, const at::Tensor& reference,
                   const CellStore& store, const fs::path& out_dir) {
  const json out = to_json(result);
  write_file_atomic(out_dir / "compare.json", out.dump(2) + "\n");
  write_file_atomic(out_dir / "compare.csv", csv_of(result.rows));
  if (is_image_shape(meta.sample_shape) && store.shown > 0) {
    const Image grid = labelled_rows(grid_rows(*cfg.compare, result.rows, reference.slice(0, 0, store.shown), store),
                                     meta.data_lo, meta.data_hi);
    write_file_atomic(out_dir / "compare_grid.png", encode_png(grid, "diffode", out.dump()));
  } else {
    spdlog::info("sample shape {} is not an image: no compare_grid.png", json(meta.sample_shape).dump());
  }
  plot_error_vs_nfe(cfg, result.rows, out_dir);
}

void check_comparable(const Config& cfg, const RunOptions& opt) {
  if (!cfg.compare)
    throw InputError(cfg.source + ": /compare: missing: 'diffode compare' needs a compare section "
                                  "({\"solvers\": [{\"name\": \"euler\"}, ...], \"nfe\": [5, 10]})");
  if (opt.shard.count > 1) throw InputError("--shard: 'diffode compare' runs on one machine; shard 'diffode sample'");
}

// compare.json's head: what was compared, on which model and seeds, against which reference.
CompareResult result_head(const Config& cfg, const Model& model, int threads, const Reference& ref) {
  CompareResult result;
  result.config = to_json(cfg);
  result.model_path = model.path().string();
  result.model_sha256 = model.sha256();
  result.seeds = {cfg.sampling.seed, cfg.sampling.num_samples};
  result.reference = ref.info;
  result.reference_cache = ref.cache.string();
  result.threads = threads;
  return result;
}

}  // namespace

CompareResult run_compare(const Config& cfg, const fs::path& out_dir, const RunOptions& opt) {
  check_comparable(cfg, opt);
  const int threads = set_threads(cfg.model.threads);
  c10::InferenceMode inference;
  const Model model = load_run_model(cfg);
  const ModelMeta& meta = model.meta();
  const std::vector<Cell> cells = plan_cells(cfg, model);
  const std::optional<Evaluation> eval = load_evaluation(cfg, meta.sample_shape);
  CreatedDirs created;
  check_writable_dir(out_dir, created);
  const DirLock lock(out_dir);
  check_own_folder(out_dir, FolderKind::compare);
  created.create(out_dir / "cells");

  const Reference ref = reference_solution(cfg, model);
  const Yardstick yardstick{ref.samples, eval ? &*eval : nullptr,
                            run_labels(cfg, meta.num_classes, meta.sample_shape, 0, cfg.sampling.num_samples),
                            meta.num_classes, meta.data_hi - meta.data_lo};
  CompareResult result = result_head(cfg, model, threads, ref);
  result.reference_frechet_distance = yardstick.frechet(ref.samples);

  const CellStore store{out_dir / "cells", ref.cache.string(),
                        std::min<int64_t>(cfg.compare->grid_samples, cfg.sampling.num_samples)};
  for (const auto& cell : cells) result.rows.push_back(measure_cell(cell, yardstick, store));

  write_reports(cfg, result, meta, ref.samples, store, out_dir);
  created.keep();
  return result;
}

}  // namespace diffode
