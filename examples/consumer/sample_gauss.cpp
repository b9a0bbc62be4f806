// diffode as a library, with no config and no JSON: load a model, plan a grid for a target
// NFE, draw per-seed noise and integrate its probability-flow ODE with one solver.
//
//   build/sample_gauss [MODEL] [SOLVER] [NFE]      (default: models/gauss.pt dpmpp2m 10)
//
// Prints the plan and the mean and standard deviation of 16 samples.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "diffode/core/error.hpp"
#include "diffode/core/integrate.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/noise.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"

int main(int argc, char** argv) try {
  using namespace diffode;
  const std::string path = argc > 1 ? argv[1] : "models/gauss.pt";
  const SolverInfo& solver = find_solver(argc > 2 ? argv[2] : "dpmpp2m");
  const int nfe = argc > 3 ? std::atoi(argv[3]) : 10;
  set_threads(0);
  c10::InferenceMode inference;

  const Model model = Model::load({path});
  const ModelMeta& meta = model.meta();
  ScheduleSpec schedule;  // polynomial, rho 7 (Karras et al.); a flow model from t = 1 needs time_uniform
  if (std::isinf(meta.sigma_max)) schedule.schedule = &find_schedule("time_uniform");
  const StepPlan plan = plan_steps(solver, schedule, {meta.sigma_min, meta.sigma_max, meta.process}, std::nullopt,
                                   nfe, std::nullopt, 0, false);

  const at::Tensor eps = make_noise(/*seed=*/0, /*first=*/0, /*count=*/16, meta.sample_shape).to(at::kDouble);
  ModelDenoiser den(model, at::kDouble);
  const at::Tensor x = integrate(solver, den, eps, plan.grid, {plan.afs}, false);
  den.check_finite(plan.grid);

  std::printf("%s: %s, %d steps = %d NFE%s, sigma %g -> %g\n", path.c_str(), solver.name.c_str(), plan.steps,
              plan.nfe, plan.afs ? " (afs)" : "", plan.grid.front(), plan.grid.back());
  std::string shape;
  for (const int64_t d : meta.sample_shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  std::printf("16 samples of shape [%s]: mean %.4f, std %.4f\n", shape.c_str(), x.mean().item<double>(),
              x.std().item<double>());
  return 0;
} catch (const diffode::InputError& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 2;
}
