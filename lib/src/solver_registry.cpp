#include <ATen/ATen.h>

#include "diffode/error.hpp"
#include "diffode/solver.hpp"
#include "solvers/solvers.hpp"

namespace diffode {

Tensor per_sample(const Tensor& v, const Tensor& x) {
  std::vector<int64_t> view(static_cast<size_t>(x.dim()), 1);
  view[0] = v.size(0);
  return v.to(x.scalar_type()).view(view);
}

Tensor velocity(Denoiser& den, const Tensor& x, double sigma) {
  return (x - den.denoise(x, sigma)).div_(sigma);
}

Denoised Denoiser::denoise_with_feature(const Tensor& x, double sigma) {
  return {denoise(x, sigma), at::zeros({x.size(0), feature_dim()}, x.options())};
}

MeanValueStep FixedStep::predict(const Tensor& feature, double, double) const {
  const int64_t b = feature.size(0);
  const auto opts = feature.options();
  return {at::full({b}, r_, opts), at::full({b}, c_, opts), at::full({b}, a_, opts)};
}

const std::vector<SolverInfo>& solvers() {
  using namespace solver_impl;
  const char* kAmedNfe = "2N; 2N-1 when sigma_min = 0";
  static const std::vector<SolverInfo> s = {
      {"euler", "Euler in sigma = DDIM (Song et al. 2021)", "N", 1, 0, euler},
      {"heun", "Heun's 2nd order (Karras et al. 2022, Alg. 1)", "2N; 2N-1 when sigma_min = 0", 2, 0, heun},
      {"dpm2", "DPM-Solver-2, geometric midpoint (Lu et al. 2022)", "2N; 2N-1 when sigma_min = 0", 2, 0, dpm2},
      {"dpmpp2m", "DPM-Solver++(2M), data prediction, multistep (Lu et al. 2022)", "N", 2, 0, dpmpp2m},
      {"dpmpp3m", "DPM-Solver++(3M), data prediction, multistep (Lu et al. 2022)", "N", 3, 0, dpmpp3m},
      {"ipndm", "iPNDM, fixed Adams-Bashforth on d, order <= max_order (Zhang & Chen 2022)", "N", 4, 4, ipndm},
      {"ipndm_v", "iPNDM with variable-step Adams-Bashforth weights (Zhang & Chen 2022)", "N", 4, 4, ipndm_v},
      // AMED (Zhou et al. 2024): need a predictor distilled for the model, steps and schedule.
      {"amed", "AMED-Solver: one learned mean-value step per interval (Zhou et al. 2024)", kAmedNfe, 2, 0, amed, true,
       false},
      {"amed+euler", "AMED-Plugin on Euler: a learned extra point per interval", kAmedNfe, 1, 0, amed_euler, true,
       false},
      {"amed+ipndm", "AMED-Plugin on iPNDM: a learned extra point per interval, one history", kAmedNfe, 4, 4,
       amed_ipndm, true, true},
      {"amed+dpm2", "AMED-Plugin on DPM-Solver-2: learned midpoint", kAmedNfe, 2, 0, amed_dpm2, true, false},
      {"amed+dpmpp2m", "AMED-Plugin on DPM-Solver++(2M): a learned extra point per interval", kAmedNfe, 2, 0,
       amed_dpmpp2m, true, true},
  };
  return s;
}

std::vector<std::string> solver_names() {
  std::vector<std::string> out;
  for (const auto& s : solvers()) out.push_back(s.name);
  return out;
}

const SolverInfo& find_solver(const std::string& name) {
  for (const auto& s : solvers())
    if (s.name == name) return s;
  throw InputError(unknown_name_message("solver", name, solver_names()));
}

}  // namespace diffode
