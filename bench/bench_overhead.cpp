// Overhead benchmark: wall time of sampling ÷ (NFE × one bare model call at the same batch),
// per solver, measured in one run. Usage: diffode_bench MODEL BATCH NFE [THREADS] [REPEATS]
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "diffode/config.hpp"
#include "diffode/model.hpp"
#include "diffode/sampler.hpp"

using namespace diffode;
using Clock = std::chrono::steady_clock;

namespace {

template <class F>
double median_seconds(int repeats, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL BATCH NFE [THREADS] [REPEATS]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int64_t batch = std::stoll(argv[2]);
  const int nfe = std::stoi(argv[3]);
  const int threads = set_threads(argc > 4 ? std::stoi(argv[4]) : 0);
  const int repeats = argc > 5 ? std::stoi(argv[5]) : 5;
  c10::InferenceMode guard;

  const Model model = Model::load({path});
  const auto& meta = model.meta();
  const SigmaRange range{meta.sigma_min, meta.sigma_max, meta.process};
  const Tensor eps = make_noise(0, 0, batch, meta.sample_shape);
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), meta.sample_shape.begin(), meta.sample_shape.end());
  const Tensor x_t = at::randn(shape);
  const Tensor t = at::full({batch}, meta.process.time_of(1.0));
  for (int i = 0; i < 3; ++i) model.forward(x_t, t);  // warm-up
  const double call = median_seconds(std::max(repeats, 3) * 4, [&] { model.forward(x_t, t); });

  std::printf("model %s, batch %lld, %d threads: one bare call %.3f ms\n", path.c_str(),
              static_cast<long long>(batch), threads, call * 1e3);
  std::printf("%-10s %5s %5s %12s %12s %8s\n", "solver", "steps", "NFE", "sample ms", "NFE x call", "ratio");
  ScheduleSpec spec;
  for (const auto& s : solvers()) {
    StepPlan plan;
    try {
      plan = plan_steps(s, spec, range, std::nullopt, nfe, std::nullopt, 0, false);
    } catch (const std::exception& e) {
      std::printf("%-10s %s\n", s.name.c_str(), e.what());
      continue;
    }
    for (const char* precision : {"float32", "float64"}) {
      const auto dtype = std::string(precision) == "float64" ? at::kDouble : at::kFloat;
      const Tensor e = eps.to(dtype);
      auto run = [&] {
        ModelDenoiser den(model, dtype);
        integrate(s, den, e, plan.grid, {plan.afs, 0}, false);
        den.check_finite(plan.grid);
      };
      run();  // warm-up
      const double wall = median_seconds(repeats, run);
      std::printf("%-10s %5d %5d %12.2f %12.2f %8.4f  (state %s)\n", s.name.c_str(), plan.steps, plan.nfe,
                  wall * 1e3, plan.nfe * call * 1e3, wall / (plan.nfe * call), precision);
    }
  }
  return 0;
}
