#include "diffode/quality.hpp"

#include <spdlog/spdlog.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffode/error.hpp"
#include "diffode/io.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

FeatureStats feature_stats(const at::Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2)
    throw InputError("feature statistics need at least 2 feature vectors [N, F]");
  const at::Tensor f = features.to(at::kDouble);
  FeatureStats s;
  s.count = f.size(0);
  s.mean = f.mean(0);
  const at::Tensor c = f - s.mean;
  s.cov = c.t().mm(c) / static_cast<double>(s.count - 1);
  return s;
}

namespace {
// Σ^½ of a symmetric positive semi-definite matrix.
at::Tensor sqrt_psd(const at::Tensor& m) {
  auto [values, vectors] = at::linalg_eigh(m);
  return (vectors * values.clamp_min(0).sqrt()).mm(vectors.t());
}
}  // namespace

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  if (a.dim() != b.dim())
    throw InputError("Fréchet distance of features of different sizes: " + std::to_string(a.dim()) + " vs " +
                     std::to_string(b.dim()));
  const at::Tensor root = sqrt_psd(a.cov);
  at::Tensor m = root.mm(b.cov).mm(root);
  m = (m + m.t()) * 0.5;  // symmetric up to rounding
  const double tr_sqrt = at::linalg_eigvalsh(m).clamp_min(0).sqrt().sum().item<double>();
  const double mean_term = (a.mean - b.mean).pow(2).sum().item<double>();
  // Non-negative in exact arithmetic; rounding can leave a tiny negative value (e.g. a set
  // against its own statistics), which is reported as 0.
  return std::max(0.0, mean_term + a.cov.trace().item<double>() + b.cov.trace().item<double>() - 2 * tr_sqrt);
}

ReferenceStats load_reference_stats(const fs::path& path) {
  const std::string where = "statistics " + path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(where + ": " + (fs::exists(path) ? "cannot be read" : "does not exist"));
  std::stringstream buf;
  buf << in.rdbuf();
  const json j = parse_json_text(buf.str(), where);
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
  if (!at::allclose(r.stats.cov, r.stats.cov.t(), 1e-9, 1e-12)) throw InputError(where + ": /cov: is not symmetric");
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

struct FeatureModel::Impl {
  torch::jit::Module module;
  fs::path path;
  std::string sha256;
  bool has_logits = false;
  int64_t dim = 0;
  c10::Device device = c10::kCPU;
};

FeatureModel FeatureModel::load(const fs::path& path, const std::vector<int64_t>& sample_shape,
                                const std::string& device) {
  const std::string where = "feature model " + path.string();
  if (!fs::exists(path)) throw InputError(where + ": file does not exist");
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->device = c10::Device(device);
  try {
    impl->module = torch::jit::load(path.string(), impl->device);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw InputError(where + ": not a loadable TorchScript archive: " + what.substr(0, what.find('\n')));
  }
  impl->module.eval();
  impl->sha256 = sha256_file(path);
  if (!impl->module.find_method("features"))
    throw InputError(where + ": has no features(x) method (a feature model must export one)");
  impl->has_logits = impl->module.find_method("forward").has_value();
  std::vector<int64_t> shape = {2};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  c10::InferenceMode guard;
  at::Tensor f;
  try {
    f = impl->module.get_method("features")({at::zeros(shape, at::TensorOptions().device(impl->device))}).toTensor();
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw InputError(where + ": features(x) failed on x of shape " + json(shape).dump() + ": " +
                     what.substr(0, what.find('\n')));
  }
  if (f.dim() != 2 || f.size(0) != 2)
    throw InputError(where + ": features(x) must return [B, F], got " + json(f.sizes().vec()).dump());
  impl->dim = f.size(1);
  FeatureModel m;
  m.impl_ = std::move(impl);
  return m;
}

at::Tensor FeatureModel::features(const at::Tensor& x) const {
  return impl_->module.get_method("features")({x.to(impl_->device, at::kFloat)}).toTensor();
}
at::Tensor FeatureModel::logits(const at::Tensor& x) const {
  return impl_->module.forward({x.to(impl_->device, at::kFloat)}).toTensor();
}
bool FeatureModel::has_logits() const { return impl_->has_logits; }
int64_t FeatureModel::feature_dim() const { return impl_->dim; }
const std::string& FeatureModel::sha256() const { return impl_->sha256; }
const fs::path& FeatureModel::path() const { return impl_->path; }

void QualityMeter::add(const at::Tensor& samples, const std::vector<int64_t>& labels, int64_t num_classes) {
  c10::InferenceMode guard;
  features_.push_back(model_.features(samples).to(at::kDouble).cpu());
  if (labels.empty() || !model_.has_logits()) return;
  const at::Tensor pred = model_.logits(samples).argmax(1).cpu();
  for (size_t k = 0; k < labels.size(); ++k) {
    if (labels[k] >= num_classes) continue;
    ++labelled_;
    agree_ += pred[static_cast<int64_t>(k)].item<int64_t>() == labels[k];
  }
}

int64_t QualityMeter::count() const {
  int64_t n = 0;
  for (const auto& f : features_) n += f.size(0);
  return n;
}

FeatureStats QualityMeter::stats() const { return feature_stats(at::cat(features_)); }

std::optional<double> QualityMeter::class_agreement() const {
  if (labelled_ == 0) return std::nullopt;
  return static_cast<double>(agree_) / static_cast<double>(labelled_);
}

std::vector<int64_t> SampleSet::sample_shape() const {
  return std::vector<int64_t>(samples.sizes().begin() + 1, samples.sizes().end());
}

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
    std::ifstream in(manifest);
    std::stringstream text;
    text << in.rdbuf();
    const json m = parse_json_text(text.str(), manifest.string());
    if (m.contains("labels") && m["labels"].is_array() && m["labels"].size() == static_cast<size_t>(a.shape[0]))
      set.labels = m["labels"].get<std::vector<int64_t>>();
    set.num_classes = m.value("/run/model/metadata/num_classes"_json_pointer, int64_t{0});
  }
  return set;
}

QualityMeter measure_quality(const FeatureModel& model, const SampleSet& set, int64_t batch) {
  QualityMeter meter(model);
  const int64_t n = set.samples.size(0);
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min(batch, n - first);
    std::vector<int64_t> labels;
    if (!set.labels.empty()) labels.assign(set.labels.begin() + first, set.labels.begin() + first + count);
    meter.add(set.samples.slice(0, first, first + count), labels, set.num_classes);
  }
  return meter;
}

void check_reference(const FeatureModel& model, const ReferenceStats& ref, const std::string& where) {
  if (model.feature_dim() != ref.stats.dim())
    throw InputError("feature model " + model.path().string() + " gives " + std::to_string(model.feature_dim()) +
                     " features, but statistics " + where + " hold " + std::to_string(ref.stats.dim()));
  if (!ref.feature_model_sha256.empty() && ref.feature_model_sha256 != model.sha256())
    spdlog::warn("statistics {} were made with another feature model (sha256 {}, not {})", where,
                 ref.feature_model_sha256.substr(0, 12), model.sha256().substr(0, 12));
}

}  // namespace diffode
