#pragma once
// The model contract of DESIGN.md §5: a TorchScript module with forward(x, t[, y]) and
// metadata in diffode.json, loaded, checked against its metadata and probed once.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "diffode/core/model_meta.hpp"

namespace diffode {

struct ModelOptions {
  std::filesystem::path path;
  std::string device = "cpu";
  std::string dtype = "float32";                         // dtype of model calls
  nlohmann::json overrides = nlohmann::json::object();   // config model.* metadata keys
  std::string where = "config";                          // names the overrides in messages
};

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

}  // namespace diffode
