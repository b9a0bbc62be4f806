#include "commands.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>

#include "diffode/io/atomic_file.hpp"
#include "diffode/core/amed_predictor.hpp"
#include "diffode/runs/compare.hpp"
#include "diffode/runs/distill.hpp"
#include "diffode/runs/config.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/quality.hpp"
#include "diffode/runs/run.hpp"
#include "diffode/runs/samples.hpp"
#include "diffode/runs/sampler.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"
#include "diffode/runs/tune.hpp"
#include "markdown.hpp"
#include "shard_env.hpp"

namespace diffode::cli {

namespace fs = std::filesystem;

namespace {

// A progress bar of a count (iterations, trajectories) on stderr when it is a terminal;
// otherwise a log line at every tenth of the total.
class CountBar {
 public:
  explicit CountBar(const char* unit) : unit_(unit), tty_(::isatty(STDERR_FILENO) != 0) {}
  ~CountBar() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void operator()(int64_t done, int64_t total, const std::string& detail = "") {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (total <= 0) return;
    if (tty_) {
      const int width = 30, filled = static_cast<int>(width * done / total);
      std::fprintf(stderr, "\r[%s%s] %lld/%lld %s  %s  %.0f s ", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), unit_, detail.c_str(), elapsed);
      std::fflush(stderr);
      drawn_ = true;
    } else if (done > 0 && (done == total || done * 10 / total != last_ * 10 / total)) {
      spdlog::info("{}/{} {}{}{}, {:.0f} s", done, total, unit_, detail.empty() ? "" : ": ", detail, elapsed);
      last_ = done;
    }
  }

 private:
  const char* unit_;
  bool tty_;
  bool drawn_ = false;
  int64_t last_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// A one-line progress bar on stderr when it is a terminal; plain log lines otherwise.
class Progress {
 public:
  Progress() : tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}
  ~Progress() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void operator()(int64_t steps_done, int64_t steps_total, int64_t samples_done) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    if (!tty_) {
      if (samples_done != last_samples_ && samples_done > 0) spdlog::info("{} samples done, {:.1f} s", samples_done, elapsed);
      last_samples_ = samples_done;
      return;
    }
    if (steps_done < steps_total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30;
    const int filled = static_cast<int>(width * steps_done / std::max<int64_t>(1, steps_total));
    std::fprintf(stderr, "\r[%s%s] %lld/%lld steps  %lld samples  %.1f s", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(steps_done),
                 static_cast<long long>(steps_total), static_cast<long long>(samples_done), elapsed);
    std::fflush(stderr);
    drawn_ = true;
  }

 private:
  bool tty_, drawn_ = false;
  int64_t last_samples_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_{};
};

std::string num(double v) {
  if (std::isinf(v)) return "inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

namespace {

// One run of a command: its record (for a batch's index) and the tables it prints ("" none).
struct RunOutcome {
  nlohmann::json record;
  std::string tables;
};
using CommandRun = std::function<RunOutcome(const Config&, const fs::path&, const RunOptions&)>;

// Runs one config, or a batch (several configs, or a sweep) with an index; prints each run's
// tables (in a batch under the run's name) and the output directory.
int run_configs(const ConfigArgs& args, const CommandRun& run) {
  const std::vector<NamedConfig> runs = load_run_set(args.configs, args.sets);
  RunOptions opt;
  opt.resume = args.resume;
  if (!args.shard.empty()) opt.shard = parse_shard(args.shard);
  const Config& first = runs.front().config;
  fs::path out_dir;
  if (args.out)
    out_dir = fs::absolute(*args.out);
  else if (first.output.dir)
    out_dir = *first.output.dir;
  else {
    check_run_folder_name(args.configs.front().stem().string(), args.configs.front().string());
    out_dir = fs::absolute(fs::path("runs") / args.configs.front().stem());
  }
  Progress progress;
  opt.progress = std::ref(progress);
  if (runs.size() == 1 && runs.front().sweep.empty()) {
    const RunOutcome outcome = run(first, out_dir, opt);
    if (!outcome.tables.empty()) std::cout << outcome.tables << "\n";
    std::cout << (opt.shard.count > 1 ? out_dir / shard_dir_name(opt.shard) : out_dir).string() << "\n";
    return 0;
  }
  run_batch(runs, out_dir, [&](const Config& cfg, const fs::path& dir, const RunOptions& o) {
    RunOutcome outcome = run(cfg, dir, o);
    if (!outcome.tables.empty()) std::cout << "## " << dir.filename().string() << "\n\n" << outcome.tables << "\n";
    return std::move(outcome.record);
  }, opt);
  std::cout << out_dir.string() << "\n";
  return 0;
}

}  // namespace

int cmd_sample(const ConfigArgs& args) {
  return run_configs(args, [](const Config& cfg, const fs::path& dir, const RunOptions& o) {
    return RunOutcome{run_sample(cfg, dir, o), ""};
  });
}

int cmd_compare(const ConfigArgs& args) {
  return run_configs(args, [](const Config& cfg, const fs::path& dir, const RunOptions& o) {
    const CompareResult result = run_compare(cfg, dir, o);
    return RunOutcome{to_json(result), compare_markdown(result)};
  });
}

int cmd_merge(const std::vector<fs::path>& dirs, const std::optional<fs::path>& out) {
  if (!out && dirs.size() == 1 && fs::is_directory(dirs[0]) && !fs::exists(dirs[0] / "shard.json") &&
      shard_dirs_in(dirs[0]).empty()) {
    // A batch run's folder: every run folder in it that holds shards is merged in place.
    std::vector<fs::path> runs;
    for (const auto& e : fs::directory_iterator(dirs[0]))
      if (e.is_directory() && !shard_dirs_in(e.path()).empty()) runs.push_back(fs::absolute(e.path()));
    std::sort(runs.begin(), runs.end());
    for (const auto& run : runs) {
      merge_shards({run}, run);
      std::cout << run.string() << "\n";
    }
    if (!runs.empty()) return 0;
  }
  fs::path out_dir;
  if (out) {
    out_dir = fs::absolute(*out);
  } else if (dirs.size() == 1 && !fs::exists(dirs[0] / "shard.json")) {
    out_dir = fs::absolute(dirs[0]);  // a run folder holding its shards
  } else {
    throw InputError("merge: give the output directory with -o (the shards are not all in one run folder)");
  }
  merge_shards(dirs, out_dir);
  std::cout << out_dir.string() << "\n";
  return 0;
}

int cmd_distill(const ConfigArgs& args) {
  if (args.configs.size() != 1) throw InputError("distill: give one config (-c FILE), got " + std::to_string(args.configs.size()));
  if (!args.shard.empty() || args.resume)
    throw InputError("distill: --shard and --resume are for sample and compare (a re-run of distill continues by itself)");
  const Config cfg = load_config(args.configs.front(), args.sets);
  fs::path out;
  if (args.out)
    out = fs::absolute(*args.out);
  else if (cfg.solver.predictor)
    out = *cfg.solver.predictor;
  else
    throw InputError(cfg.source + ": /solver/predictor: no predictor file to write: set solver.predictor or give -o FILE");
  CountBar bar("iterations");
  run_distill(cfg, out, [&](int64_t it, int64_t total, double loss, double best) {
    bar(it, total, fmt::format("loss {:.4g}  best val {:.4g}", loss, best));
  });
  std::cout << out.string() << "\n";
  return 0;
}

int cmd_tune(const ConfigArgs& args) {
  if (args.configs.size() != 1) throw InputError("tune: give one config (-c FILE), got " + std::to_string(args.configs.size()));
  if (!args.out) throw InputError("tune: give the grid file to write (-o FILE)");
  const Config cfg = load_config(args.configs.front(), args.sets);
  CountBar bar("teacher trajectories");
  run_tune(cfg, fs::absolute(*args.out), [&](int64_t done, int64_t total) { bar(done, total); });
  std::cout << fs::absolute(*args.out).string() << "\n";
  return 0;
}

int cmd_info(const fs::path& path) {
  set_threads(0);
  const ArchiveInfo archive = inspect_archive(path);
  if (!archive.predictor.is_null()) {
    const nlohmann::json& m = archive.predictor;
    if (!m.is_object())
      throw InputError("predictor " + path.string() + ": its metadata is not a JSON object: " + json_excerpt(m));
    // Each field as written (a string bare, anything else as JSON; "?" when absent): a
    // predictor with fields of the wrong type is still described, not a crash.
    auto field = [&](const char* key) {
      if (!m.contains(key)) return std::string("?");
      return m[key].is_string() ? m[key].get<std::string>().substr(0, 300) : json_excerpt(m[key], 300);
    };
    std::cout << "predictor    " << path.string() << " (AMED step predictor)\n"
              << "sha256       " << archive.sha256 << "\n"
              << "solver       " << field("solver") << ", " << field("steps") << " steps, afs " << field("afs")
              << ", space " << (m.contains("space") ? field("space") : "sigma") << ", last interval "
              << (m.contains("last_interval") ? field("last_interval") : "base") << "\n"
              << "model        " << field("model_path") << " (sha256 " << field("model_sha256") << ")\n"
              << "schedule     " << field("schedule") << "\n"
              << "sigmas       " << field("sigmas") << "\n"
              << "features     " << field("feature_dim") << "\n"
              << "teacher      " << field("teacher") << "\n"
              << "training     " << field("training") << "\n";
    return 0;
  }
  std::cout << "model        " << path.string() << "\n"
            << "sha256       " << archive.sha256 << "\n"
            << "methods      ";
  for (const auto& name : archive.methods) std::cout << name << " ";
  std::cout << "\n";
  if (!archive.missing.empty()) {
    std::string keys;
    for (const auto& k : archive.missing) keys += (keys.empty() ? "model." : ", model.") + k;
    std::cout << "metadata     " << (archive.metadata.empty() ? "none: diffode.json missing from the archive" : archive.metadata.dump())
              << "\ncontract     not probed: a config using this model must set " << keys << "\n";
    return 0;
  }
  const Model model = Model::load({path});
  const ModelMeta& m = model.meta();
  const Process& p = m.process;
  std::cout << "contract     ok: forward(x, t" << (m.num_classes > 0 ? ", y" : "") << ") probed on a batch of 2\n"
            << "features     "
            << (model.has_features() ? "forward_with_features: " + std::to_string(model.feature_dim()) +
                                           " values per sample (for AMED)"
                                     : std::string("none (AMED predictors see zero features)"))
            << "\n"
            << "prediction   " << m.prediction << "\n"
            << "process      " << p.to_json().dump() << "\n"
            << "sample_shape " << nlohmann::json(m.sample_shape).dump() << "\n"
            << "data_range   [" << num(m.data_lo) << ", " << num(m.data_hi) << "]\n"
            << "sigma range  [" << num(m.sigma_min) << ", " << num(m.sigma_max) << "] (model time t in ["
            << num(p.time_of(m.sigma_min)) << ", " << num(p.time_of(m.sigma_max)) << "])\n"
            << "num_classes  " << m.num_classes << "\n";
  if (!m.description.empty()) std::cout << "description  " << m.description << "\n";
  return 0;
}

int cmd_eval(const EvalArgs& args) {
  set_threads(0);
  const SampleSet set = load_samples(args.samples);
  const ReferenceStats ref = load_reference_stats(args.stats);
  const FeatureModel model = FeatureModel::load(args.features, set.sample_shape());
  check_reference(model, ref, args.stats.string());
  const QualityMeter meter = measure_quality(model, set, args.batch_size);
  const double fd = frechet_distance(meter.stats(), ref.stats);
  std::printf("samples            %lld\nfrechet_distance   %.6f\n", static_cast<long long>(meter.count()), fd);
  if (const auto agreement = meter.class_agreement()) std::printf("class_agreement    %.4f\n", *agreement);
  return 0;
}

namespace {

// Refuses an output file that is one of the command's inputs (the same file, however named),
// or an existing file that is not a statistics file (diffode writes over only its own).
void check_stats_output(const EvalArgs& args) {
  std::vector<fs::path> inputs = {args.features, args.samples};
  if (fs::is_directory(args.samples)) inputs = {args.features, args.samples / "samples.npy", args.samples / "manifest.json"};
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::equivalent(args.stats, in, ec))
      throw InputError("-o " + args.stats.string() + ": is " + in.string() +
                       ", an input of this command: give another file for the statistics");
  }
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(args.stats, ec))) return;
  try {
    if (!fs::is_regular_file(fs::symlink_status(args.stats, ec))) throw InputError("not a regular file");
    load_reference_stats(args.stats);
  } catch (const InputError&) {
    throw InputError("-o " + args.stats.string() +
                     ": exists and is not a statistics file diffode wrote; diffode does not write over it: give "
                     "another file or move it away");
  }
}

}  // namespace

int cmd_stats(const EvalArgs& args) {
  set_threads(0);
  check_stats_output(args);
  check_can_write(args.stats);
  const SampleSet set = load_samples(args.samples);
  const FeatureModel model = FeatureModel::load(args.features, set.sample_shape());
  const QualityMeter meter = measure_quality(model, set, args.batch_size);
  save_reference_stats(args.stats, meter.stats(), model.sha256());
  std::printf("%s: statistics of %lld feature vectors (dim %lld)\n", args.stats.string().c_str(),
              static_cast<long long>(meter.count()), static_cast<long long>(model.feature_dim()));
  return 0;
}

int cmd_solvers() {
  std::printf("%-12s %-28s %-6s %s\n", "name", "NFE for N steps", "order", "method");
  for (const auto& s : solvers())
    std::printf("%-12s %-28s %-6d %s\n", s.name.c_str(), s.nfe_rule.c_str(), s.order, s.description.c_str());
  std::printf(
      "\nAFS (solver.afs) replaces the first evaluation by x/sqrt(1+sigma_0^2): one NFE less.\n"
      "A grid from sigma = inf (flow model from t = 1) takes its first step as the DDIM limit (1 NFE,\n"
      "0 with AFS) and runs the solver on the other N-1 steps. denoise_to_zero adds 1 NFE.\n"
      "solver.nfe picks the steps (and AFS, unless set) that hit that NFE exactly.\n"
      "AMED solvers: each learned interval costs 2 NFE. An odd NFE is planned with AFS and every\n"
      "interval learned (the published plan) on a grid ending at sigma_min > 0 (schedule.sigma_min,\n"
      "0.002 in the paper) or with solver.last_interval \"learned\" on a grid to 0; on a grid to 0\n"
      "with the base solver's last step (the default there) it is planned without AFS. The shipped\n"
      "predictors use the published plan, measured better (README).\n");
  return 0;
}

int cmd_schedules() {
  std::vector<std::string> params;
  int width = static_cast<int>(std::strlen("params"));
  for (const auto& s : schedules()) {
    std::string p;
    for (const auto& k : s.params) p += (p.empty() ? "" : ",") + k;
    params.push_back(p.empty() ? "-" : p);
    width = std::max(width, static_cast<int>(params.back().size()));
  }
  std::printf("%-13s %-*s %s\n", "name", width, "params", "sigma grid");
  for (size_t i = 0; i < schedules().size(); ++i)
    std::printf("%-13s %-*s %s\n", schedules()[i].name.c_str(), width, params[i].c_str(),
                schedules()[i].description.c_str());
  return 0;
}

}  // namespace diffode::cli
