// The `sample` run on disk: batches streamed into parts/, finished into the outputs of
// DESIGN.md §8; shards of a run and their merge; the lock and resume rules.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "diffode/core/denoiser.hpp"
#include "diffode/core/error.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/png.hpp"
#include "diffode/io/json_file.hpp"
#include "diffode/core/quality.hpp"
#include "diffode/runs/run.hpp"
#include "diffode/runs/sampler.hpp"
#include "images.hpp"
#include "run_dir.hpp"
#include "clock.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- shards

std::string shard_dir_name(const Shard& shard) {
  return "shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count);
}

// ---------------------------------------------------------------- the run

namespace {


// The process's peak resident memory so far, in MiB (Linux reports KiB).
double peak_rss_mb() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string number_text(double v) { return std::isinf(v) ? "inf" : json(v).dump(); }

// Batches [first, last) of a run of n_batches split into shard.count parts, by seed.
std::pair<int64_t, int64_t> shard_batches(const Shard& shard, int64_t n_batches) {
  return {n_batches * shard.index / shard.count, n_batches * (shard.index + 1) / shard.count};
}

// What the outputs need of the model's metadata.
struct SampleForm {
  std::vector<int64_t> shape;
  double lo, hi;  // data range
  int64_t num_classes;
};
SampleForm form_of(const ModelMeta& m) { return {m.sample_shape, m.data_lo, m.data_hi, m.num_classes}; }
// The same from a run record's "model"/"metadata" (a shard's, for merge).
SampleForm form_of(const json& meta) {
  return {meta["sample_shape"].get<std::vector<int64_t>>(), meta["data_range"][0].get<double>(),
          meta["data_range"][1].get<double>(), meta.value("num_classes", int64_t{0})};
}

// The finished outputs of a run from its complete parts: samples.npy, samples/<seed>.png,
// grid.png, manifest.json. Everything written depends only on the config (`run` is its
// identity) and the parts' bytes, so one machine, shards and resumed runs give the same files.
json finish_run(const Config& cfg, const json& run, const SampleForm& form, const std::vector<fs::path>& part_files,
                const fs::path& out_dir, const std::optional<Evaluation>& eval) {
  const std::vector<int64_t>& shape = form.shape;
  const double lo = form.lo, hi = form.hi;
  const int64_t num_classes = form.num_classes;
  const int64_t n = cfg.sampling.num_samples, seed = cfg.sampling.seed;
  const std::vector<int64_t> labels = run_labels(cfg, num_classes, shape, 0, n);

  std::optional<QualityMeter> meter;
  if (eval) meter.emplace(eval->features);
  std::vector<int64_t> npy_shape = {n};
  npy_shape.insert(npy_shape.end(), shape.begin(), shape.end());
  std::optional<AtomicFile> npy;
  if (cfg.output.npy) {
    npy.emplace(out_dir / "samples.npy");
    npy->write(npy_header(npy_shape));
  }
  if (cfg.output.png) fs::create_directories(out_dir / "samples");
  std::vector<Image> tiles;
  std::vector<float> points;
  std::vector<std::string> files;
  int64_t k = 0;
  for (const auto& file : part_files) {
    const NpyArray part = read_npy(file);
    const int64_t count = part.shape.at(0);
    std::vector<int64_t> part_shape = part.shape;
    const Tensor x = at::from_blob(const_cast<float*>(part.data.data()), part_shape, at::kFloat);
    if (meter)
      meter->add(x, labels.empty() ? labels : std::vector<int64_t>(labels.begin() + k, labels.begin() + k + count),
                 num_classes);
    if (npy) npy->write(part.data.data(), part.data.size() * sizeof(float));
    for (int64_t i = 0; i < count; ++i, ++k) {
      if (is_point_shape(shape)) {
        points.insert(points.end(), part.data.begin() + 2 * i, part.data.begin() + 2 * i + 2);
        continue;
      }
      if (!is_image_shape(shape)) continue;
      if (static_cast<int64_t>(tiles.size()) >= cfg.output.grid_max && !cfg.output.png) continue;
      Image img = to_image(x[i], lo, hi);
      if (cfg.output.png) write_file_atomic(out_dir / ("samples/" + std::to_string(seed + k) + ".png"), encode_png(img));
      if (static_cast<int64_t>(tiles.size()) < cfg.output.grid_max) tiles.push_back(std::move(img));
    }
  }
  if (k != n) throw std::logic_error("finish_run: parts hold " + std::to_string(k) + " samples, expected " + std::to_string(n));
  if (npy) {
    npy->commit();
    files.push_back("samples.npy");
  }
  if (cfg.output.png)
    for (int64_t i = 0; i < n; ++i) files.push_back("samples/" + std::to_string(seed + i) + ".png");
  if (!tiles.empty() || !points.empty()) {
    const Image grid = points.empty() ? tile(tiles, cfg.output.grid_cols) : scatter(points, lo, hi);
    write_file_atomic(out_dir / "grid.png", encode_png(grid, "diffode", run.dump()));
    files.push_back("grid.png");
  } else {
    spdlog::info("sample shape {} is neither an image nor a 2-D point: no grid.png", json(shape).dump());
  }
  json quality = nullptr;
  if (meter) {
    const double fd = frechet_distance(meter->stats(), eval->reference.stats);
    const auto agreement = meter->class_agreement();
    quality = {{"frechet_distance", fd},
               {"class_agreement", agreement ? json(*agreement) : json(nullptr)},
               {"samples", meter->count()},
               {"feature_model", {{"path", cfg.eval->features.string()}, {"sha256", eval->features.sha256()}}},
               {"reference_stats", cfg.eval->stats.string()}};
    spdlog::info("Fréchet distance {:.4f} over {} samples{}", fd, meter->count(),
                 agreement ? fmt::format(", class agreement {:.1f}%", 100 * *agreement) : "");
  }
  json manifest = {
      {"run", run},
      {"seeds", {{"first", seed}, {"count", n}, {"rule", "sample k uses seed first + k"}}},
      {"labels", labels},
      {"files", files},
      {"quality", quality},
  };
  write_file_atomic(out_dir / "manifest.json", manifest.dump(2) + "\n");
  return manifest;
}

// True if out_dir holds a complete run whose identity equals `run`.
bool run_complete(const fs::path& out_dir, const json& run) {
  const json m = read_json_file(out_dir / "manifest.json");
  if (!m.is_object() || !m.contains("run") || m["run"] != run || !m.contains("files")) return false;
  std::error_code ec;
  for (const auto& f : m["files"])
    if (!f.is_string() || !fs::exists(out_dir / f.get<std::string>(), ec)) return false;
  return true;
}

}  // namespace

namespace {

// The batches a run (or its shard) still has to sample: the first sample of each.
struct BatchPlan {
  int64_t n_batches, first, last;  // the shard's batches [first, last) of n_batches
  std::vector<int64_t> todo;       // first sample of each batch left to sample
  int64_t resumed;                 // complete batches kept from an earlier run
};
BatchPlan plan_batches(const Config& cfg, const RunParts& parts, const Shard& shard, const fs::path& dir) {
  const int64_t n = cfg.sampling.num_samples, batch = cfg.sampling.batch_size;
  BatchPlan b{(n + batch - 1) / batch, 0, 0, {}, 0};
  std::tie(b.first, b.last) = shard_batches(shard, b.n_batches);
  for (int64_t k = b.first; k < b.last; ++k)
    if (!parts.complete(k * batch, std::min(batch, n - k * batch))) b.todo.push_back(k * batch);
  b.resumed = b.last - b.first - static_cast<int64_t>(b.todo.size());
  if (b.resumed) spdlog::info("resuming: {} of {} batches already complete in {}", b.resumed, b.last - b.first, dir.string());
  if (shard.count > 1 && b.first == b.last)
    spdlog::info("shard {} of {}: no batches (the run has {} batches for {} shards)", shard.index, shard.count,
                 b.n_batches, shard.count);
  else if (shard.count > 1)
    spdlog::info("shard {} of {}: batches {}..{} of {} (samples {}..{})", shard.index, shard.count, b.first, b.last - 1,
                 b.n_batches, b.first * batch, std::min(n, b.last * batch) - 1);
  return b;
}

// What sampling the batches took.
struct Sampled {
  int64_t samples = 0;
  json batch_s = json::array();  // seconds of each batch
  double seconds = 0;
};

// Samples the planned batches into parts/. A batch's file is written (and fsynced) on
// another thread while the next batch integrates; its error surfaces at the next batch
// (complete batches are kept either way). (Drawing the next batch's noise beside the
// sampling was measured too, and gained nothing on this 2-vCPU machine.) NaN from the model
// removes parts/: that config cannot finish, so nothing is kept.
Sampled sample_batches(const SampleJob& job, const RunParts& parts, const BatchPlan& b, const fs::path& dir,
                       const ProgressFn& progress) {
  const int64_t n = job.config().sampling.num_samples, batch = job.config().sampling.batch_size;
  const int64_t steps_total = static_cast<int64_t>(job.plan().steps) * static_cast<int64_t>(b.todo.size());
  int64_t steps_done = 0;
  Sampled out;
  const auto t_sample = Clock::now();
  std::future<void> writing;
  auto finish_writing = [&writing] {
    if (writing.valid()) writing.get();
  };
  try {
    for (const int64_t first : b.todo) {
      const int64_t count = std::min(batch, n - first);
      const auto t_batch = Clock::now();
      const Tensor x = job.sample(first, count, [&] {
        ++steps_done;
        if (progress) progress(steps_done, steps_total, out.samples);
      });
      finish_writing();
      writing = std::async(std::launch::async, [&parts, first, x] { parts.write(first, x); });
      out.batch_s.push_back(seconds_since(t_batch));
      out.samples += count;
      if (progress) progress(steps_done, steps_total, out.samples);
      spdlog::debug("batch of {} done ({} of {} samples)", count, first + count, n);
    }
    finish_writing();
  } catch (const InputError&) {
    try {
      finish_writing();
    } catch (const std::exception&) {  // the NaN is what is reported
    }
    remove_parts(dir);
    throw;
  }
  out.seconds = seconds_since(t_sample);
  return out;
}

// A sharded run's record of its batches (shard.json), which merge reads.
json write_shard_record(const SampleJob& job, const Shard& shard, const BatchPlan& b, const json& timings,
                        const fs::path& dir) {
  const json record = {{"run", job.identity()},
                       {"shard", {{"index", shard.index}, {"count", shard.count}}},
                       {"batches", {{"first", b.first}, {"last", b.last}, {"batch_size", job.config().sampling.batch_size}}},
                       {"timings", timings}};
  write_file_atomic(dir / "shard.json", record.dump(2) + "\n");
  return record;
}

// The output folder of a run: a complete earlier run of the same config there (or of its
// shard) is returned as it is.
std::optional<json> already_complete(const fs::path& dir, const json& run, bool sharded) {
  if (!sharded && run_complete(dir, run)) {
    spdlog::info("{} already holds this run, complete: nothing to do", dir.string());
    remove_parts(dir);
    return read_json_file(dir / "manifest.json");
  }
  if (sharded) {
    const json done = read_json_file(dir / "shard.json");
    if (done.is_object() && done.value("run", json()) == run) {
      spdlog::info("{} already holds this shard, complete: nothing to do", dir.string());
      return done;
    }
  }
  return std::nullopt;
}

void log_run(const SampleJob& job, int threads) {
  const ModelMeta& meta = job.model().meta();
  const StepPlan& plan = job.plan();
  spdlog::info("model {} ({}, {} prediction, process {}), sample shape {}", job.model().path().filename().string(),
               job.model().sha256().substr(0, 12), meta.prediction, meta.process.name(), json(meta.sample_shape).dump());
  spdlog::info("solver {} with {} steps = {} NFE{}, schedule {} from sigma {} to {}, {} threads", job.solver().name,
               plan.steps, plan.nfe, plan.afs ? " (afs)" : "", job.config().schedule.schedule->name,
               number_text(plan.grid.front()), number_text(plan.grid.back()), threads);
}

}  // namespace

json run_sample(const Config& cfg, const fs::path& out_dir, const RunOptions& opt) {
  const auto t_start = Clock::now();
  if (cfg.compare)
    spdlog::warn("{}: the compare section is read by `diffode compare`; `sample` samples the solver section ({})",
                 cfg.source, cfg.solver.info().name);
  const int threads = set_threads(cfg.model.threads);
  c10::InferenceMode inference;
  const SampleJob job(cfg, load_run_model(cfg));
  const double load_s = seconds_since(t_start);
  const std::optional<Evaluation> eval = load_evaluation(cfg, job.model().meta().sample_shape);  // bad files: first
  const bool sharded = opt.shard.count > 1;
  const fs::path dir = sharded ? out_dir / shard_dir_name(opt.shard) : out_dir;
  CreatedDirs created;
  check_writable_dir(dir, created);
  const DirLock lock(dir);
  remove_stale_temporaries(dir);
  if (auto done = already_complete(dir, job.identity(), sharded)) {
    created.keep();
    return *done;
  }
  RunParts parts(dir, job.identity(), opt.resume);
  log_run(job, threads);
  const BatchPlan b = plan_batches(cfg, parts, opt.shard, dir);
  const Sampled sampled = sample_batches(job, parts, b, dir, opt.progress);
  json timings = {{"load_s", load_s},
                  {"sample_s", sampled.seconds},
                  {"samples_sampled", sampled.samples},
                  {"batches_resumed", b.resumed},
                  {"samples_per_s", sampled.samples > 0 ? json(static_cast<double>(sampled.samples) / sampled.seconds)
                                                         : json(nullptr)},
                  {"batch_s", sampled.batch_s},
                  {"threads", threads}};
  retire_finished_run(dir, job.identity());
  if (sharded) {
    const json record = write_shard_record(job, opt.shard, b, timings, dir);
    created.keep();
    spdlog::info("shard {} of {}: {} samples in {:.2f} s -> {}", opt.shard.index, opt.shard.count, sampled.samples,
                 sampled.seconds, dir.string());
    return record;
  }
  std::vector<fs::path> files;
  for (int64_t k = 0; k < b.n_batches; ++k) files.push_back(parts.file(k * cfg.sampling.batch_size));
  const json manifest = finish_run(cfg, job.identity(), form_of(job.model().meta()), files, dir, eval);
  timings["total_s"] = seconds_since(t_start);
  timings["peak_rss_mb"] = peak_rss_mb();
  write_file_atomic(dir / "timings.json", timings.dump(2) + "\n");
  remove_parts(dir);
  created.keep();
  spdlog::info("{} samples in {:.2f} s -> {}", cfg.sampling.num_samples, sampled.seconds, dir.string());
  return manifest;
}

// ---------------------------------------------------------------- merge

std::vector<fs::path> shard_dirs_in(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && e.path().filename().string().rfind("shard-", 0) == 0) found.push_back(e.path());
  std::sort(found.begin(), found.end());
  return found;
}

namespace {

// Every shard folder named, directly or as shard-*-of-* inside a run folder.
std::vector<fs::path> shard_folders(const std::vector<fs::path>& dirs) {
  std::vector<fs::path> shard_dirs;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) throw InputError("merge: " + d.string() + " is not a directory");
    if (fs::exists(d / "shard.json") || fs::exists(d / "parts")) {
      shard_dirs.push_back(d);
      continue;
    }
    const std::vector<fs::path> found = shard_dirs_in(d);
    if (found.empty()) throw InputError("merge: " + d.string() + " holds no shards (shard-I-of-N folders from --shard)");
    shard_dirs.insert(shard_dirs.end(), found.begin(), found.end());
  }
  return shard_dirs;
}

// One shard folder's record (shard.json), checked to be whole and to match its batch files.
json read_shard_record(const fs::path& d) {
  const json s = read_json_file(d / "shard.json");
  if (!s.is_object())
    throw InputError("merge: " + d.string() + " is incomplete (no shard.json: its sampling did not finish); re-run "
                     "that shard with --resume");
  const bool well_formed = s.contains("run") && s["run"].is_object() && s.contains("shard") &&
                           s["shard"].value("index", json()).is_number_integer() &&
                           s["shard"].value("count", json()).is_number_integer() && s.contains("batches") &&
                           s["batches"].value("first", json()).is_number_integer() &&
                           s["batches"].value("last", json()).is_number_integer();
  if (!well_formed) throw InputError("merge: " + (d / "shard.json").string() + ": not a shard record written by diffode");
  if (read_json_file(d / "parts" / "run.json") != s["run"])
    throw InputError("merge: " + d.string() + ": its batch files belong to another run than its shard.json (it was "
                     "re-run with another config); re-run that shard");
  const int idx = s["shard"]["index"].get<int>(), n = s["shard"]["count"].get<int>();
  if (n < 1 || idx < 0 || idx >= n)
    throw InputError("merge: " + (d / "shard.json").string() + ": shard " + std::to_string(idx) + " of " +
                     std::to_string(n) + " is out of range");
  return s;
}

// The shards of one run, each locked while it is merged, by index; all of them present.
struct ShardSet {
  json run;
  int count = 0;
  std::map<int, std::pair<fs::path, json>> shards;
  std::vector<std::unique_ptr<DirLock>> locks;  // no shard may change while it is merged
};
ShardSet read_shards(const std::vector<fs::path>& shard_dirs) {
  ShardSet set;
  fs::path run_from;
  std::vector<fs::path> seen;
  for (const auto& d : shard_dirs) {
    const fs::path canonical = fs::weakly_canonical(d);
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end())
      throw InputError("merge: shard folder " + d.string() + " is given twice");
    seen.push_back(canonical);
    set.locks.push_back(std::make_unique<DirLock>(d));
    const json s = read_shard_record(d);
    const int idx = s["shard"]["index"].get<int>(), n = s["shard"]["count"].get<int>();
    if (set.run.is_null()) {
      set.run = s["run"];
      run_from = d;
      set.count = n;
    } else if (s["run"] != set.run) {
      throw InputError("merge: " + d.string() + " and " + run_from.string() + " come from different runs: " +
                       first_difference(set.run, s["run"]));
    } else if (n != set.count) {
      throw InputError("merge: " + d.string() + " is one of " + std::to_string(n) + " shards, " + run_from.string() +
                       " one of " + std::to_string(set.count));
    }
    if (set.shards.count(idx))
      throw InputError("merge: shard " + std::to_string(idx) + " of " + std::to_string(n) + " is given twice: " +
                       set.shards[idx].first.string() + " and " + d.string());
    set.shards[idx] = {d, s};
  }
  std::string missing;
  for (int i = 0; i < set.count; ++i)
    if (!set.shards.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
  if (!missing.empty())
    throw InputError("merge: shards missing: " + missing + " of " + std::to_string(set.count) + " (expected folders " +
                     shard_dir_name({std::stoi(missing.substr(0, missing.find(','))), set.count}) + " ...)");
  return set;
}

// The batch files of every shard, in sample order, each checked to be whole.
std::vector<fs::path> shard_batch_files(const ShardSet& set, const Config& cfg) {
  const int64_t n = cfg.sampling.num_samples, batch = cfg.sampling.batch_size;
  const std::string digest = run_digest(set.run);
  std::vector<fs::path> files;
  for (const auto& [idx, entry] : set.shards) {
    const auto& [d, s] = entry;
    for (int64_t b = s["batches"]["first"].get<int64_t>(); b < s["batches"]["last"].get<int64_t>(); ++b) {
      const int64_t first = b * batch;
      const fs::path f = d / "parts" / part_name(first);
      if (!part_complete(f, first, std::min(batch, n - first), set.run["model"]["metadata"]["sample_shape"], digest))
        throw InputError("merge: " + d.string() + ": batch file " + f.filename().string() +
                         " is missing, truncated or not this run's (its check digests differ); re-run that shard");
      files.push_back(f);
    }
  }
  return files;
}

}  // namespace

json merge_shards(const std::vector<fs::path>& dirs, const fs::path& out_dir) {
  const auto t_start = Clock::now();
  set_threads(0);
  c10::InferenceMode inference;
  const ShardSet set = read_shards(shard_folders(dirs));
  const Config cfg = parse_config(set.run["config"], "merge", "/");  // the run's config, from its shards' record
  const SampleForm form = form_of(set.run["model"]["metadata"]);
  const std::vector<fs::path> files = shard_batch_files(set, cfg);
  json shard_timings = json::array();
  for (const auto& [idx, entry] : set.shards) shard_timings.push_back(entry.second["timings"]);
  CreatedDirs created;
  check_writable_dir(out_dir, created);
  const DirLock lock(out_dir);
  remove_stale_temporaries(out_dir);
  const json manifest = finish_run(cfg, set.run, form, files, out_dir, load_evaluation(cfg, form.shape));
  write_file_atomic(out_dir / "timings.json",
                    json({{"shards", shard_timings}, {"merge_s", seconds_since(t_start)}}).dump(2) + "\n");
  created.keep();
  spdlog::info("merged {} shards ({} samples) -> {}", set.count, cfg.sampling.num_samples, out_dir.string());
  return manifest;
}

}  // namespace diffode
