#include "diffode/runs/samples.hpp"

#include <ATen/ATen.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/npy.hpp"
#include "run_dir.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

SampleSet load_samples(const fs::path& run_or_npy) {
  const bool is_dir = fs::is_directory(run_or_npy);
  const fs::path npy = is_dir ? run_or_npy / "samples.npy" : run_or_npy;
  NpyArray a = read_npy(npy);
  if (a.shape.size() < 2 || a.shape[0] < 2)
    throw InputError("array " + npy.string() + ": expected [N, *sample_shape] with N >= 2");
  SampleSet set;
  set.samples = at::tensor(a.data, at::kFloat).view(a.shape);
  const int64_t bad = (~at::isfinite(set.samples)).sum().item<int64_t>();
  if (bad > 0)
    throw InputError("array " + npy.string() + ": " + std::to_string(bad) +
                     " values are NaN or Inf; statistics of such samples mean nothing");
  const fs::path manifest = run_or_npy / "manifest.json";
  if (is_dir && fs::exists(manifest)) {
    const json m = parse_json_text(read_input_file(manifest, "manifest"), manifest.string());
    check_manifest(m, manifest.string());  // a record read back is input: checked by type
    const auto classes = "/run/model/metadata/num_classes"_json_pointer;
    if (m.contains(classes) && !m.at(classes).is_number_integer())
      throw InputError(manifest.string() + ": /run/model/metadata/num_classes: expected an integer, got " +
                       json_excerpt(m.at(classes), 60));
    if (m["labels"].size() == static_cast<size_t>(a.shape[0])) set.labels = m["labels"].get<std::vector<int64_t>>();
    set.num_classes = m.value(classes, int64_t{0});
  }
  return set;
}

ReferenceStats load_reference_stats(const fs::path& path) {
  const std::string where = "statistics " + path.string();
  const json j = parse_json_text(read_input_file(path, "statistics"), where);
  auto need = [&](const char* key, bool (json::*is)() const noexcept, const char* what) -> const json& {
    if (!j.is_object() || !j.contains(key) || !(j[key].*is)())
      throw InputError(where + ": /" + key + ": expected " + what);
    return j[key];
  };
  const int64_t dim = need("feature_dim", &json::is_number_integer, "an integer").get<int64_t>();
  const int64_t count = need("count", &json::is_number_integer, "an integer").get<int64_t>();
  const json& mean = need("mean", &json::is_array, "a list of feature_dim numbers");
  const json& cov = need("cov", &json::is_array, "a feature_dim x feature_dim list of lists");
  if (dim < 1 || count < 2) throw InputError(where + ": need feature_dim >= 1 and count >= 2");
  if (static_cast<int64_t>(mean.size()) != dim)
    throw InputError(where + ": /mean: has " + std::to_string(mean.size()) + " values, feature_dim is " +
                     std::to_string(dim));
  if (static_cast<int64_t>(cov.size()) != dim)
    throw InputError(where + ": /cov: has " + std::to_string(cov.size()) + " rows, feature_dim is " + std::to_string(dim));
  std::vector<double> flat;
  flat.reserve(static_cast<size_t>(dim * dim));
  for (size_t r = 0; r < cov.size(); ++r) {
    if (!cov[r].is_array() || static_cast<int64_t>(cov[r].size()) != dim)
      throw InputError(where + ": /cov/" + std::to_string(r) + ": expected a row of " + std::to_string(dim) + " numbers");
    for (const auto& v : cov[r]) {
      if (!v.is_number()) throw InputError(where + ": /cov/" + std::to_string(r) + ": holds " + v.dump() + ", not a number");
      flat.push_back(v.get<double>());
    }
  }
  std::vector<double> mu;
  for (const auto& v : mean) {
    if (!v.is_number()) throw InputError(where + ": /mean: holds " + v.dump() + ", not a number");
    mu.push_back(v.get<double>());
  }
  ReferenceStats r;
  r.stats.count = count;
  r.stats.mean = at::tensor(mu, at::kDouble);
  r.stats.cov = at::tensor(flat, at::kDouble).view({dim, dim});
  if (!r.stats.mean.isfinite().all().item<bool>() || !r.stats.cov.isfinite().all().item<bool>())
    throw InputError(where + ": holds NaN or Inf");
  check_covariance(r.stats.cov, where + ": /cov");  // symmetric positive semi-definite
  if (j.contains("feature_model_sha256") && j["feature_model_sha256"].is_string())
    r.feature_model_sha256 = j["feature_model_sha256"].get<std::string>();
  return r;
}

void save_reference_stats(const fs::path& path, const FeatureStats& stats, const std::string& sha) {
  const at::Tensor mean = stats.mean.to(at::kDouble).contiguous(), cov = stats.cov.to(at::kDouble).contiguous();
  const double* m = mean.data_ptr<double>();
  const double* c = cov.data_ptr<double>();
  const int64_t f = stats.dim();
  json j = {{"feature_dim", f}, {"count", stats.count}, {"mean", std::vector<double>(m, m + f)}};
  if (!sha.empty()) j["feature_model_sha256"] = sha;
  json rows = json::array();
  for (int64_t r = 0; r < f; ++r) rows.push_back(std::vector<double>(c + r * f, c + (r + 1) * f));
  j["cov"] = rows;
  write_file_atomic(path, j.dump() + "\n");
}

}  // namespace diffode
