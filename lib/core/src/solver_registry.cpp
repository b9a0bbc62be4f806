#include <ATen/ATen.h>

#include "diffode/core/error.hpp"
#include "diffode/core/solver.hpp"
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

namespace {

// A registry row with its fields named.
class Row {
 public:
  Row(const char* name, SolverFn fn) {
    info_.name = name;
    info_.fn = fn;
  }
  Row& about(const char* text) { return set(info_.description, text); }
  Row& nfe(const char* rule) { return set(info_.nfe_rule, rule); }
  Row& order(int p) { return set(info_.order, p); }
  Row& max_order(int p) { return set(info_.default_max_order, p); }
  Row& to_zero(ToZero rule) { return set(info_.to_zero, rule); }
  Row& learned() { return set(info_.learned, true); }
  Row& multistep() { return set(info_.multistep, true); }
  Row& in_time() { return set(info_.in_time, true); }
  operator SolverInfo() const { return info_; }

 private:
  template <class T, class V>
  Row& set(T& field, V value) {
    field = value;
    return *this;
  }
  SolverInfo info_;
};

}  // namespace

const std::vector<SolverInfo>& solvers() {
  using namespace solver_impl;
  const char* two_per_step = "2N; 2N-1 when sigma_min = 0";
  const char* learned_per_step = "2N; 2N-1 to 0, base last";
  static const std::vector<SolverInfo> s = {
      Row("euler", euler).about("Euler in sigma = DDIM (Song et al. 2021)").order(1).in_time(),
      Row("heun", heun).about("Heun's 2nd order (Karras et al. 2022, Alg. 1)").nfe(two_per_step).order(2)
          .to_zero(ToZero::euler).in_time(),
      Row("dpm2", dpm2).about("DPM-Solver-2, geometric midpoint (Lu et al. 2022)").nfe(two_per_step).order(2)
          .to_zero(ToZero::euler).in_time(),
      Row("dpmpp2m", dpmpp2m).about("DPM-Solver++(2M), data prediction, multistep (Lu et al. 2022)").order(2)
          .to_zero(ToZero::denoised),
      Row("dpmpp3m", dpmpp3m).about("DPM-Solver++(3M), data prediction, multistep (Lu et al. 2022)").order(3)
          .to_zero(ToZero::denoised),
      Row("unipc_bh1", unipc_bh1)
          .about("UniPC: UniP predictor + UniC corrector, data prediction, B(h) = h (Zhao et al. 2023)")
          .order(4).max_order(3).to_zero(ToZero::denoised),
      Row("unipc_bh2", unipc_bh2).about("UniPC with B(h) = e^h - 1 (Zhao et al. 2023)")
          .order(4).max_order(3).to_zero(ToZero::denoised),
      Row("ipndm", ipndm).about("iPNDM, fixed Adams-Bashforth on d, order <= max_order (Zhang & Chen 2022)")
          .order(4).max_order(4).in_time(),
      Row("ipndm_v", ipndm_v).about("iPNDM with variable-step Adams-Bashforth weights (Zhang & Chen 2022)")
          .order(4).max_order(4).in_time(),
      // AMED (Zhou et al. 2024): need a predictor distilled for the model, steps and schedule.
      Row("amed", amed).about("AMED-Solver: one learned mean-value step per interval (Zhou et al. 2024)")
          .nfe(learned_per_step).order(2).to_zero(ToZero::euler).learned().in_time(),
      Row("amed+euler", amed_euler).about("AMED-Plugin on Euler: a learned extra point per interval")
          .nfe(learned_per_step).order(1).to_zero(ToZero::euler).learned().in_time(),
      Row("amed+ipndm", amed_ipndm).about("AMED-Plugin on iPNDM: a learned extra point per interval, one history")
          .nfe(learned_per_step).order(4).max_order(4).learned().multistep().in_time(),
      Row("amed+dpm2", amed_dpm2).about("AMED-Plugin on DPM-Solver-2: learned midpoint")
          .nfe(learned_per_step).order(2).to_zero(ToZero::euler).learned().in_time(),
      Row("amed+dpmpp2m", amed_dpmpp2m).about("AMED-Plugin on DPM-Solver++(2M): a learned extra point per interval")
          .nfe(learned_per_step).order(2).to_zero(ToZero::denoised).learned().multistep(),
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
