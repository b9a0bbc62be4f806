#pragma once
// A loaded model as the solvers see it: the canonical denoiser D(x̃, σ̃) of DESIGN.md §2,
// with classifier-free guidance, the NFE count and the finiteness check.
#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

#include "diffode/core/grid.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/solver.hpp"

namespace diffode {

// The model as the solvers see it. Counts model evaluations (NFE) and records, without a
// host sync per call, whether each output was finite.
class ModelDenoiser final : public Denoiser {
 public:
  ModelDenoiser(const Model& model, c10::ScalarType state_dtype);
  Tensor denoise(const Tensor& x, double sigma) override;
  Tensor denoise(const Tensor& x, const Tensor& sigma) override;
  Denoised denoise_with_feature(const Tensor& x, double sigma) override;
  int64_t feature_dim() const override;

  // The class of each row of the next batches (int64 [B]; undefined: the null class of a
  // conditional model) and the guidance scale w: D = D_null + w (D_class − D_null), both
  // from one batched network call. w = 1 is plain conditional sampling.
  void set_condition(const at::Tensor& labels, double guidance);

  // Model evaluations since reset(): the NFE of each sample (a guided one counts once).
  int64_t evaluations() const { return static_cast<int64_t>(sigmas_.size()); }
  // Network forward passes per sample since reset() (two per guided evaluation).
  int64_t network_passes() const { return evaluations() * (guidance_ != 1.0 ? 2 : 1); }
  // Forgets the evaluations so far (call at the start of each batch).
  void reset();
  // Throws InputError naming the first evaluation (its step on `grid` and σ̃) whose output
  // held NaN or Inf. One host sync for all evaluations since reset().
  void check_finite(const Grid& grid) const;

 private:
  // One evaluation at a shared σ̃ (double) or per-sample σ̃ (Tensor [B]).
  template <class S>
  Denoised evaluate(const Tensor& x, const S& sigma, bool with_feature);

  const Model& model_;
  c10::ScalarType state_dtype_;
  at::Tensor labels_;
  double guidance_ = 1.0;
  std::vector<double> sigmas_;  // σ̃ of each evaluation; NaN for per-sample σ̃
  std::vector<at::Tensor> finite_;  // per evaluation: the output's sum in float64
};

}  // namespace diffode
