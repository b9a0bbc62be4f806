// `diffode compare`: every compared solver at every NFE on the same seeds, measured against
// one reference solution that is cached on disk and checked against half its steps.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "diffode/error.hpp"
#include "diffode/io.hpp"
#include "diffode/quality.hpp"
#include "diffode/run.hpp"
#include "diffode/sampler.hpp"
#include "images.hpp"
#include "plot.hpp"
#include "run_dir.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The base config with its solver replaced by `solver` at `nfe` or `steps` ("{nfe}" in a
// predictor path becomes the NFE).
Config solver_config(const Config& base, SolverConfig solver, std::optional<int> nfe, std::optional<int> steps) {
  Config c = base;
  c.compare.reset();
  solver.nfe = nfe;
  solver.steps = steps;
  if (nfe && solver.predictor) {
    std::string p = solver.predictor->string();
    for (auto at = p.find("{nfe}"); at != std::string::npos; at = p.find("{nfe}"))
      p.replace(at, 5, std::to_string(*nfe));
    solver.predictor = p;
  }
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

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// FD of samples x (with their labels) to the config's reference statistics; none without `eval`.
std::optional<double> frechet_of(const std::optional<Evaluation>& eval, const at::Tensor& x,
                                 const std::vector<int64_t>& labels, int64_t num_classes) {
  if (!eval) return std::nullopt;
  const QualityMeter meter = measure_quality(eval->features, SampleSet{x, labels, num_classes}, 250);
  return frechet_distance(meter.stats(), eval->reference.stats);
}

void save_tensor(const fs::path& path, const at::Tensor& x) {
  const at::Tensor c = x.to(at::kFloat).contiguous();
  write_npy(path, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr<float>());
}

at::Tensor load_tensor(const fs::path& path) {
  NpyArray a = read_npy(path);
  return at::tensor(a.data, at::kFloat).view(a.shape);
}

// The reference solution: from the cache, else sampled (with its half-step check) and cached.
struct Reference {
  at::Tensor samples;
  json info;
};
Reference reference_solution(const Config& cfg, const Model& model) {
  const ReferenceConfig& rc = cfg.compare->reference;
  const std::string& name = rc.solver->name;
  const int steps = rc.steps, half = steps / 2;
  auto job_at = [&](int n) {
    SolverConfig solver;
    solver.solver = rc.solver;
    solver.precision = "float64";
    try {
      return SampleJob(solver_config(cfg, solver, std::nullopt, n), model);
    } catch (const InputError& e) {
      throw ConfigError(cfg.source, "/compare/reference", name + " at " + std::to_string(n) + " steps: " + e.what());
    }
  };
  const SampleJob full = job_at(steps), coarse = job_at(half);
  // The cache key: what determines the reference samples (not batching, threads or outputs).
  json key = full.identity();
  for (const char* p : {"/config/output", "/config/compare", "/config/eval", "/config/distill",
                        "/config/sampling/batch_size", "/config/model/threads", "/model/path", "/diffode_version"}) {
    const json::json_pointer ptr(p);
    if (key.contains(ptr)) key[ptr.parent_pointer()].erase(ptr.back());
  }
  const std::string hash = sha256_hex(key.dump()).substr(0, 24);
  const fs::path cache = cache_dir() / ("reference-" + hash + ".npy"), cache_info = cache_dir() / ("reference-" + hash + ".json");
  Reference ref;
  const json cached = read_json_file(cache_info);
  if (cached.is_object() && cached.value("key", json()) == key && fs::exists(cache)) {
    ref.samples = load_tensor(cache);
    ref.info = cached["info"];
    spdlog::info("reference from the cache {}", cache.string());
  } else {
    spdlog::info("reference: {} at {} steps ({} NFE), checked against {} steps", name, steps,
                 full.plan().nfe, half);
    const auto t0 = Clock::now();
    ref.samples = sample_all(full);
    const double seconds = seconds_since(t0);
    const at::Tensor check = sample_all(coarse);
    const Errors e = errors_of(check, ref.samples, model.meta().data_hi - model.meta().data_lo);
    ref.info = {{"solver", name},
                {"steps", steps},
                {"nfe", full.plan().nfe},
                {"seconds", seconds},
                {"convergence", {{"half_steps", half}, {"half_nfe", coarse.plan().nfe}, {"rmse", e.rmse}, {"max_err", e.max_err}}}};
    try {
      std::error_code ec;
      fs::create_directories(cache_dir(), ec);
      save_tensor(cache, ref.samples);
      write_file_atomic(cache_info, json({{"key", key}, {"info", ref.info}}).dump(2) + "\n");
    } catch (const std::exception& e) {
      spdlog::warn("reference not cached ({})", e.what());
    }
  }
  ref.info["cache"] = cache.string();
  const double moved = ref.info["convergence"]["rmse"].get<double>();
  spdlog::info("reference {} at {} steps: RMSE {:.3g} to {} steps (tolerance {:.3g})", name, steps, moved,
               half, rc.tolerance);
  if (!(moved <= rc.tolerance))
    throw InputError(cfg.source + ": /compare/reference: " + name + " at " + std::to_string(steps) +
                     " steps has not converged: it differs from " + std::to_string(half) + " steps by RMSE " +
                     fmt::format("{:.4g}", moved) + " > tolerance " + fmt::format("{:.4g}", rc.tolerance) +
                     "; raise compare.reference.steps (or the tolerance)");
  return ref;
}

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
  for (int nfe = target; nfe >= 1; --nfe) {
    const Config c = solver_config(cfg, solver.solver, nfe, std::nullopt);
    try {
      plan_run(c, model.meta());
    } catch (const InputError& e) {
      if (nfe == target) cell.why = e.what();
      continue;
    }
    try {
      cell.job.emplace(c, model);
    } catch (const InputError& e) {
      throw InputError(cfg.source + ": /compare/solvers: " + cell.label + " at NFE " + std::to_string(nfe) + ": " +
                       e.what());
    }
    return cell;
  }
  return cell;
}

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

std::string csv_of(const json& cells) {
  std::ostringstream out;
  const std::vector<std::string> cols = {"label", "solver", "target_nfe", "nfe", "steps", "afs",
                                         "rmse", "max_err", "psnr", "frechet_distance", "time_s", "note"};
  for (size_t i = 0; i < cols.size(); ++i) out << (i ? "," : "") << cols[i];
  out << "\n";
  for (const auto& c : cells) {
    for (size_t i = 0; i < cols.size(); ++i) out << (i ? "," : "") << csv_field(c.value(cols[i], json()));
    out << "\n";
  }
  return out.str();
}

}  // namespace

json run_compare(const Config& cfg, const fs::path& out_dir, const RunOptions& opt) {
  if (!cfg.compare)
    throw InputError(cfg.source + ": /compare: missing: 'diffode compare' needs a compare section "
                                  "({\"solvers\": [{\"name\": \"euler\"}, ...], \"nfe\": [5, 10]})");
  if (opt.shard.count > 1) throw InputError("--shard: 'diffode compare' runs on one machine; shard 'diffode sample'");
  const int threads = set_threads(cfg.model.threads);
  c10::InferenceMode inference;
  const CompareConfig& cc = *cfg.compare;
  const Model model = load_run_model(cfg);
  const ModelMeta& meta = model.meta();
  const double lo = meta.data_lo, hi = meta.data_hi;

  // Every cell planned (and its files checked) before anything is sampled.
  std::vector<Cell> cells;
  for (size_t i = 0; i < cc.solvers.size(); ++i)
    for (int target : cc.nfe) cells.push_back(plan_cell(cfg, model, i, target));
  const std::optional<Evaluation> eval = load_evaluation(cfg, meta.sample_shape);
  CreatedDirs created;
  check_writable_dir(out_dir, created);
  const DirLock lock(out_dir);
  created.create(out_dir / "cells");

  const Reference ref = reference_solution(cfg, model);
  const std::vector<int64_t> labels =
      run_labels(cfg, meta.num_classes, meta.sample_shape, 0, cfg.sampling.num_samples);
  json ref_info = ref.info;
  if (auto fd = frechet_of(eval, ref.samples, labels, meta.num_classes)) ref_info["frechet_distance"] = *fd;
  const int64_t shown = std::min<int64_t>(cc.grid_samples, cfg.sampling.num_samples);
  std::vector<std::pair<std::string, at::Tensor>> grid_rows = {
      {"reference " + cc.reference.solver->name + " " + std::to_string(cc.reference.steps) + " steps",
       ref.samples.slice(0, 0, shown)}};

  json rows = json::array();
  const json no_errors = {{"rmse", nullptr}, {"max_err", nullptr}, {"psnr", nullptr}, {"frechet_distance", nullptr}};
  std::map<std::string, json> done;  // by the identity of what was sampled, for targets that map to one NFE
  for (const auto& cell : cells) {
    json row = {{"label", cell.label}, {"target_nfe", cell.target}};
    if (!cell.job) {
      row.update(no_errors);
      row.update({{"solver", nullptr}, {"nfe", nullptr}, {"steps", nullptr}, {"afs", nullptr}, {"time_s", nullptr},
                  {"note", cell.why}});
      spdlog::warn("{} at NFE {}: no reachable NFE at or below it ({})", cell.label, cell.target, cell.why);
      rows.push_back(row);
      continue;
    }
    const SampleJob& job = *cell.job;
    const json identity = {{"run", job.identity()}, {"reference", ref.info["cache"]}, {"shown", shown}};
    const std::string name =
        std::to_string(cell.solver) + "-" + safe_file_name(cell.label) + "@" + std::to_string(job.plan().nfe);
    const fs::path saved = out_dir / "cells" / (name + ".json"), thumbs = out_dir / "cells" / (name + ".npy");
    json result;
    if (const json earlier = read_json_file(saved); earlier.is_object() && earlier.value("identity", json()) == identity &&
                                               fs::exists(thumbs)) {
      result = earlier["result"];
      spdlog::info("{} at NFE {}: kept from {}", cell.label, job.plan().nfe, saved.string());
    } else {
      const auto t0 = Clock::now();
      result = {{"solver", job.solver().name}, {"nfe", job.plan().nfe}, {"steps", job.plan().steps},
                {"afs", job.plan().afs}};
      at::Tensor x;
      try {
        x = sample_all(job);
      } catch (const NonFiniteError& e) {  // NaN or Inf on this cell's grid: the cell's result, not the compare's end
        result.update(no_errors);
        result.update({{"time_s", seconds_since(t0)}, {"note", std::string("diverged: ") + e.what()}});
        row.update(result);
        spdlog::warn("{} at NFE {}: diverged ({})", cell.label, job.plan().nfe, e.what());
        rows.push_back(row);
        continue;  // not kept in cells/: a re-run samples it again
      }
      const double seconds = seconds_since(t0);
      const Errors e = errors_of(x, ref.samples, hi - lo);
      const auto fd = frechet_of(eval, x, labels, meta.num_classes);
      result.update({{"rmse", e.rmse},
                     {"max_err", e.max_err},
                     {"psnr", finite_or_null(e.psnr)},
                     {"frechet_distance", fd ? json(*fd) : json(nullptr)},
                     {"time_s", seconds}});
      if (const auto& p = job.config().solver.predictor) result["predictor"] = p->string();
      save_tensor(thumbs, x.slice(0, 0, shown));
      write_file_atomic(saved, json({{"identity", identity}, {"result", result}}).dump(2) + "\n");
      spdlog::info("{} at NFE {}: RMSE {:.4g}, max error {:.4g}{} ({:.2f} s)", cell.label, job.plan().nfe, e.rmse,
                   e.max_err, fd ? fmt::format(", FD {:.2f}", *fd) : "", seconds);
    }
    row.update(result);
    if (job.plan().nfe != cell.target) row["note"] = "NFE " + std::to_string(cell.target) + " is not reachable";
    rows.push_back(row);
    if (!done.count(name)) {
      done[name] = result;
      grid_rows.emplace_back(cell.label + " @" + std::to_string(job.plan().nfe), load_tensor(thumbs));
    }
  }

  const json out = {{"config", to_json(cfg)},
                    {"model", {{"path", model.path().string()}, {"sha256", model.sha256()}}},
                    {"seeds", {{"first", cfg.sampling.seed}, {"count", cfg.sampling.num_samples}}},
                    {"reference", ref_info},
                    {"threads", threads},
                    {"cells", rows}};
  write_file_atomic(out_dir / "compare.json", out.dump(2) + "\n");
  write_file_atomic(out_dir / "compare.csv", csv_of(rows));
  if (is_image_shape(meta.sample_shape) && shown > 0)
    write_file_atomic(out_dir / "compare_grid.png", encode_png(labelled_rows(grid_rows, lo, hi), "diffode", out.dump()));
  else
    spdlog::info("sample shape {} is not an image: no compare_grid.png", json(meta.sample_shape).dump());
  std::vector<PlotSeries> series;
  for (const auto& solver : cc.solvers) {
    PlotSeries s{solver.name(), {}, {}};
    for (const auto& r : rows)
      if (r["label"] == s.label && !r["rmse"].is_null()) {
        s.x.push_back(r["nfe"].get<double>());
        s.y.push_back(r["rmse"].get<double>());
      }
    series.push_back(std::move(s));
  }
  plot_loglog(series, "NFE (model evaluations)", "RMSE to the reference",
              fs::path(cfg.source).stem().string() + ": error against NFE", out_dir / "error_vs_nfe.svg",
              out_dir / "error_vs_nfe.png");
  created.keep();
  return out;
}

std::string compare_markdown(const json& c) {
  auto diverged = [](const json& r) { return r.value("note", "").rfind("diverged", 0) == 0; };
  std::ostringstream out;
  const json& ref = c["reference"];
  auto num = [](const json& v, const char* fmt) {
    if (v.is_null()) return std::string("–");
    return fmt::format(fmt::runtime(fmt), v.get<double>());
  };
  out << "Reference: " << ref["solver"].get<std::string>() << " at " << ref["steps"] << " steps (" << ref["nfe"]
      << " NFE); RMSE " << num(ref["/convergence/rmse"_json_pointer], "{:.2g}") << " to "
      << ref["/convergence/half_steps"_json_pointer] << " steps. " << c["seeds"]["count"] << " samples, seeds "
      << c["seeds"]["first"] << "+.\n\n";
  const bool fd = ref.contains("frechet_distance");
  // Summary: one row per solver, RMSE (and FD) at each target NFE.
  std::vector<std::string> labels;
  std::vector<int> targets;
  for (const auto& r : c["cells"]) {
    if (std::find(labels.begin(), labels.end(), r["label"]) == labels.end()) labels.push_back(r["label"]);
    if (std::find(targets.begin(), targets.end(), r["target_nfe"]) == targets.end()) targets.push_back(r["target_nfe"]);
  }
  out << "| solver |";
  for (int t : targets) out << " RMSE @" << t << " |";
  if (fd)
    for (int t : targets) out << " FD @" << t << " |";
  out << "\n|---|";
  for (size_t i = 0; i < targets.size() * (fd ? 2 : 1); ++i) out << "---:|";
  out << "\n";
  for (const auto& label : labels) {
    out << "| " << label << " |";
    for (const char* key : {"rmse", "frechet_distance"}) {
      if (std::string(key) == "frechet_distance" && !fd) continue;
      for (int t : targets) {
        std::string text = "–";
        for (const auto& r : c["cells"])
          if (r["label"] == label && r["target_nfe"] == t && diverged(r)) {
            text = "diverged";
            if (r["nfe"] != r["target_nfe"]) text += " (NFE " + r["nfe"].dump() + ")";
          } else if (r["label"] == label && r["target_nfe"] == t && !r[key].is_null()) {
            text = num(r[key], std::string(key) == "rmse" ? "{:.4f}" : "{:.1f}");
            if (r["nfe"] != r["target_nfe"]) text += " (NFE " + r["nfe"].dump() + ")";
          }
        out << " " << text << " |";
      }
    }
    out << "\n";
  }
  out << "\nEvery cell:\n\n";
  out << "| solver | NFE | RMSE | max err | PSNR (dB) |" << (fd ? " FD |" : "") << " time (s) |\n";
  out << "|---|---:|---:|---:|---:|" << (fd ? "---:|" : "") << "---:|\n";
  for (const auto& r : c["cells"]) {
    std::string nfe = r["nfe"].is_null() ? "–" : r["nfe"].dump();
    if (!r["nfe"].is_null() && r["nfe"] != r["target_nfe"]) nfe += " (of " + r["target_nfe"].dump() + ")";
    out << "| " << r["label"].get<std::string>() << " | " << nfe << " | "
        << (diverged(r) ? std::string("diverged") : num(r["rmse"], "{:.4f}")) << " | "
        << num(r["max_err"], "{:.3f}") << " | " << num(r["psnr"], "{:.1f}") << " |"
        << (fd ? " " + num(r["frechet_distance"], "{:.1f}") + " |" : "") << " " << num(r["time_s"], "{:.2f}") << " |\n";
  }
  if (fd) out << "\nFD of the reference itself: " << num(ref["frechet_distance"], "{:.2f}") << "\n";
  return out.str();
}

}  // namespace diffode
