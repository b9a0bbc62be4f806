#pragma once
// The model contract of DESIGN.md §5: a TorchScript module with forward(x, t) and
// metadata in diffode.json, turned into the canonical denoiser D(x̃, σ̃) of §2.
#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "diffode/json_schema.hpp"
#include "diffode/process.hpp"
#include "diffode/solver.hpp"

namespace diffode {

// The metadata after merging diffode.json with the config's model.* overrides.
struct ModelMeta {
  std::string prediction;
  Process process;
  std::vector<int64_t> sample_shape;
  double data_lo = -1, data_hi = 1;
  double sigma_min = 0, sigma_max = 0;  // sigma_max may be +inf (flow from t = 1)
  int64_t num_classes = 0;  // > 0: forward(x, t, y) with y in [0, num_classes]
  bool null_class = false;  // y = num_classes means "no class" (classifier-free guidance)
  std::string description;
  nlohmann::json json;  // the merged metadata as written to manifests
};

struct ModelOptions {
  std::filesystem::path path;
  std::string device = "cpu";
  std::string dtype = "float32";                         // dtype of model calls
  nlohmann::json overrides = nlohmann::json::object();   // config model.* metadata keys
  std::string where = "config";                          // names the overrides in messages
};

std::vector<std::string> prediction_names();

// The metadata keys of diffode.json (DESIGN.md §5), which a config's model.* may override.
const std::vector<KeyInfo>& model_metadata_keys();
// Checks metadata (diffode.json or config model.* overrides) against those keys; `where`
// prefixes messages. Unknown keys (unless allowed) and wrong types throw InputError.
void validate_model_metadata(const nlohmann::json& meta, const std::string& where, bool allow_extra_keys);

// Sets LibTorch's intra-op threads: n, or every core when n = 0. Returns the number set.
int set_threads(int n);

// What a model file holds, without the contract check: for `diffode info` on a plain
// network whose metadata must come from a config.
struct ArchiveInfo {
  std::string sha256;
  nlohmann::json metadata;           // diffode.json ({} if none)
  std::vector<std::string> methods;
  std::vector<std::string> missing;  // required metadata keys it lacks
  nlohmann::json predictor;          // an AMED predictor's diffode_predictor.json (null if not one)
};
ArchiveInfo inspect_archive(const std::filesystem::path& path);

class Model {
 public:
  // Loads the archive, merges and checks the metadata, and probes forward(x, t) once.
  // Every failure is an InputError naming the file and what is wrong.
  static Model load(const ModelOptions& opt);

  const ModelMeta& meta() const;
  const std::filesystem::path& path() const;
  const std::string& sha256() const;
  const nlohmann::json& archive_metadata() const;  // diffode.json as stored ({} if none)
  std::vector<std::string> methods() const;        // the module's method names
  at::ScalarType dtype() const;
  c10::Device device() const;

  // One network evaluation in model space: o = net(x_t, t[, y]), x_t in dtype() on device();
  // y (int64 [B]) is passed when defined.
  at::Tensor forward(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& y = {}) const;
  // The same evaluation through forward_with_features: the output and the bottleneck
  // feature averaged over channels and flattened ([B, C, H, W] -> [B, H·W]; a [B, F]
  // feature as it is). Only when has_features().
  std::pair<at::Tensor, at::Tensor> forward_with_features(const at::Tensor& x_t, const at::Tensor& t,
                                                          const at::Tensor& y = {}) const;
  bool has_features() const;
  // Width F of the reduced feature (probed at load); 0 without forward_with_features.
  int64_t feature_dim() const;
  // x̂0 from the network output o at model time t (DESIGN.md §2 table), in o's dtype.
  at::Tensor x0_from_output(const at::Tensor& o, const at::Tensor& x_t, double t) const;
  // The same with a per-sample model time t [B] (differentiable in x_t and t).
  at::Tensor x0_from_output(const at::Tensor& o, const at::Tensor& x_t, const at::Tensor& t) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

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
