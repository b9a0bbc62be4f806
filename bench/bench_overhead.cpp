// Overhead benchmark: wall time of sampling ÷ (NFE × one bare model call at the same batch),
// for every solver, measured in one run. Each repeat times NFE bare calls and then one
// sampling run back to back, and the ratio is taken per repeat (median reported), so a
// change of machine load between the two is mostly cancelled. "best" is the fastest run
// over the fastest NFE bare calls: on a shared machine whose speed drifts by ±10 %, the
// fastest of several repeats is the closest to the work itself. "in-run" needs no bare
// calls: the sampling run's wall time ÷ the time spent inside the network during that run
// (the module's forward, timed by LibTorch's RecordFunction), so machine drift cancels.
// Usage: diffode_bench MODEL BATCH NFE [THREADS] [REPEATS] [STATES]   (STATES: float32,float64)
#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "diffode/runs/config.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/model.hpp"
#include "diffode/runs/run.hpp"
#include "diffode/runs/sampler.hpp"

using namespace diffode;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Seconds spent inside the outermost TorchScript call (a module's forward) on this thread.
namespace network_clock {
thread_local int depth = 0;
thread_local Clock::time_point start;
thread_local double seconds = 0;
std::unique_ptr<at::ObserverContext> enter(const at::RecordFunction&) {
  if (depth++ == 0) start = Clock::now();
  return nullptr;
}
void leave(const at::RecordFunction&, at::ObserverContext*) {
  if (--depth == 0) seconds += std::chrono::duration<double>(Clock::now() - start).count();
}
}  // namespace network_clock

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Row {
  double ratio, run_ms, bare_ms, best, in_run;
};

// Per repeat: `nfe` bare calls, then `run()`; returns the median ratio and times.
template <class Bare, class Run>
Row measure(int repeats, int nfe, Bare&& bare, Run&& run) {
  std::vector<double> ratio, run_ms, bare_ms, in_run;
  run();  // warm-up
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    for (int k = 0; k < nfe; ++k) bare();
    const double b = seconds(t0);
    network_clock::seconds = 0;
    t0 = Clock::now();
    const double inner = run();  // may report its own time (the sample part of a full run)
    const double w = inner > 0 ? inner : seconds(t0);
    in_run.push_back(w / network_clock::seconds);
    ratio.push_back(w / b);
    run_ms.push_back(w * 1e3);
    bare_ms.push_back(b * 1e3);
  }
  const double best = *std::min_element(run_ms.begin(), run_ms.end()) / *std::min_element(bare_ms.begin(), bare_ms.end());
  return {median(ratio), median(run_ms), median(bare_ms), best, median(in_run)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL BATCH NFE [THREADS] [REPEATS] [STATES]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int64_t batch = std::stoll(argv[2]);
  const int nfe = std::stoi(argv[3]);
  const int thread_arg = argc > 4 ? std::stoi(argv[4]) : 0;
  const int threads = set_threads(thread_arg);
  const int repeats = argc > 5 ? std::stoi(argv[5]) : 7;
  const std::string states = argc > 6 ? argv[6] : "float32,float64";
  c10::InferenceMode guard;
  at::addThreadLocalCallback(at::RecordFunctionCallback(network_clock::enter, network_clock::leave)
                                 .scopes({at::RecordScope::TORCHSCRIPT_FUNCTION}));

  const Model model = Model::load({path});
  const auto& meta = model.meta();
  const SigmaRange range{meta.sigma_min, meta.sigma_max, meta.process};
  const Tensor eps = make_noise(0, 0, batch, meta.sample_shape);
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), meta.sample_shape.begin(), meta.sample_shape.end());
  const Tensor x_t = at::randn(shape);
  const Tensor t = at::full({batch}, meta.process.time_of(1.0));
  // A class-conditional model is sampled with labels cycling and, when it has a null class,
  // guidance 2: one evaluation is then one network call on both halves (2 × batch).
  Tensor labels;
  const double guidance = meta.num_classes > 0 && meta.null_class ? 2.0 : 1.0;
  if (meta.num_classes > 0) labels = at::arange(batch, at::kLong).remainder(meta.num_classes);
  const Tensor bare_x = guidance != 1.0 ? at::cat({x_t, x_t}) : x_t, bare_t = guidance != 1.0 ? at::cat({t, t}) : t;
  const Tensor bare_y = !labels.defined() ? labels
                        : guidance != 1.0 ? at::cat({labels, at::full({batch}, meta.num_classes, at::kLong)})
                                          : labels;
  auto bare = [&] { model.forward(bare_x, bare_t, bare_y); };

  std::printf("model %s, batch %lld%s, %d threads, NFE %d, median of %d repeats\n", path.c_str(),
              static_cast<long long>(batch), guidance != 1.0 ? " (guided: calls of 2 x batch)" : "", threads, nfe,
              repeats);
  std::printf("%-12s %-8s %5s %11s %11s %7s %7s %7s\n", "solver", "state", "steps", "sample ms", "NFE*call ms",
              "ratio", "best", "in-run");
  // A flow model from t = 1 (sigma_max inf) has no polynomial grid: time-uniform in t there.
  ScheduleSpec spec;
  if (std::isinf(meta.sigma_max)) spec.schedule = &find_schedule("time_uniform");
  for (const auto& s : solvers()) {
    StepPlan plan;
    try {
      plan = plan_steps(s, spec, range, std::nullopt, nfe, std::nullopt, 0, false);
    } catch (const std::exception& e) {
      std::printf("%-10s %s\n", s.name.c_str(), e.what());
      continue;
    }
    for (const char* precision : {"float32", "float64"}) {
      if (states.find(precision) == std::string::npos) continue;
      const auto dtype = std::string(precision) == "float64" ? at::kDouble : at::kFloat;
      const Tensor e = eps.to(dtype);
      const Row r = measure(repeats, plan.nfe, bare, [&] {
        ModelDenoiser den(model, dtype);
        den.set_condition(labels, guidance);
        const FixedStep midpoint;  // AMED solvers: what a predictor costs aside, the same work
        integrate(s, den, e, plan.grid, {plan.afs, 0, &midpoint}, false);
        den.check_finite(plan.grid);
        return 0.0;
      });
      std::printf("%-12s %-8s %5d %11.2f %11.2f %7.3f %7.3f %7.3f\n", s.name.c_str(), precision, plan.steps,
                  r.run_ms, r.bare_ms, r.ratio, r.best, r.in_run);
    }
  }

  // The whole `sample` path for one batch (noise, solver, checks, npy, grid, manifest),
  // without model loading: the manifest's sample_s against NFE bare calls.
  const std::filesystem::path out = std::filesystem::temp_directory_path() / "diffode-bench-run";
  nlohmann::json j = {{"model", {{"path", path}, {"threads", thread_arg}}},
                      {"solver", {{"name", "dpmpp2m"}, {"nfe", nfe}}},
                      {"schedule", {{"name", spec.schedule->name}}},
                      {"sampling", {{"num_samples", batch}, {"batch_size", batch}}}};
  if (labels.defined()) {
    j["sampling"]["labels"] = "cycle";
    j["sampling"]["guidance"] = guidance;
  }
  const Config cfg = parse_config(j, "bench", ".");
  const Row r = measure(repeats, nfe, bare, [&] {
    std::filesystem::remove_all(out);
    run_sample(cfg, out);
    std::ifstream timings(out / "timings.json");
    return nlohmann::json::parse(timings)["sample_s"].get<double>();
  });
  std::filesystem::remove_all(out);
  // (no in-run here: the network time would include the load's probe call, outside sample_s)
  std::printf("%-12s %-8s %5s %11.2f %11.2f %7.3f %7.3f %7s  (diffode sample: noise, solver, outputs)\n", "dpmpp2m",
              "float64", "run", r.run_ms, r.bare_ms, r.ratio, r.best, "-");
  return 0;
}
