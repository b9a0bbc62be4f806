// The `sample` run on disk: batches streamed into parts/ (or a shard's), then assembled
// into the outputs of DESIGN.md §8 (assemble.cpp); the lock and resume rules.
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
#include "diffode/io/json_file.hpp"
#include "diffode/runs/run.hpp"
#include "diffode/runs/sampler.hpp"
#include "assemble.hpp"
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
  if (sharded && fs::is_symlink(dir))
    throw InputError(dir.string() + " is a symbolic link: diffode writes a shard into a folder of its own; move it away");
  const DirLock lock(dir);
  check_own_folder(dir, FolderKind::run);
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

}  // namespace diffode
