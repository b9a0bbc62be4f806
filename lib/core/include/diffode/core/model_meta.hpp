#pragma once
// A model's metadata (DESIGN.md §5): diffode.json merged with a config's model.* keys and
// checked, and what the network's output means (the prediction table of DESIGN.md §2).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffode/core/json_schema.hpp"
#include "diffode/core/process.hpp"

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

std::vector<std::string> prediction_names();

// The metadata keys of diffode.json (DESIGN.md §5), which a config's model.* may override.
const std::vector<KeyInfo>& model_metadata_keys();
// Keys an archive's diffode.json may also hold, for information only (never overridden,
// never used to sample): a feature model's and the exact Gaussian models' (DESIGN.md §5).
const std::vector<KeyInfo>& model_archive_info_keys();
// Checks metadata (diffode.json if `archive`, else config model.* overrides) against those
// keys; `where` prefixes messages. An unknown key (in an archive: other than the
// informational keys and keys starting "x_") is refused naming the nearest key, or
// process.<key> for a key of the process; wrong types throw InputError.
void validate_model_metadata(const nlohmann::json& meta, const std::string& where, bool archive);

// Merges the archive's diffode.json with the overrides (model.* keys; `where` names them,
// `file` the archive) and checks every value: InputError naming the key and its origin.
ModelMeta resolve_model_meta(const nlohmann::json& archive, const nlohmann::json& overrides, const std::string& file,
                             const std::string& where);

// What the network outputs -> x̂0 (DESIGN.md §2), given x_t and, at model time t,
// a = α, s = σ, da = α', ds = σ': doubles, or per-sample tensors broadcast over x_t.
template <class C>
using X0Fn = at::Tensor (*)(const at::Tensor& o, const at::Tensor& x_t, const C& a, const C& s, const C& da,
                            const C& ds);

struct Prediction {
  std::string name;
  bool finite_at_pure_noise;  // x̂0 defined where α = 0 (a flow model at t = 1)
  X0Fn<double> x0;
  X0Fn<at::Tensor> x0_per_sample;
};

// The prediction called `name`; InputError "where: unknown prediction ..." otherwise.
const Prediction& find_prediction(const std::string& name, const std::string& where);

// " (its table spans sigma a to b)" for a discrete process, whose σ̃ range is its table's;
// "" otherwise.
std::string process_range(const Process& p);

}  // namespace diffode
