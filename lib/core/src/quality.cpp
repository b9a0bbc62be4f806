#include "diffode/core/quality.hpp"

#include <spdlog/spdlog.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "torchscript.hpp"

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
// Eigenvalues of a symmetric matrix; an InputError (not LibTorch's) if the solver fails.
at::Tensor eigenvalues(const at::Tensor& m, const std::string& where) {
  try {
    return at::linalg_eigvalsh(m);
  } catch (const c10::Error&) {
    throw InputError(where + ": its eigenvalues cannot be computed");
  }
}

// Σ^½ of a symmetric positive semi-definite matrix.
at::Tensor sqrt_psd(const at::Tensor& m) {
  auto [values, vectors] = at::linalg_eigh(m);
  return (vectors * values.clamp_min(0).sqrt()).mm(vectors.t());
}
}  // namespace

void check_covariance(const at::Tensor& cov, const std::string& where) {
  if (cov.dim() != 2 || cov.size(0) != cov.size(1) || cov.size(0) < 1)
    throw InputError(where + ": is not a square matrix");
  const at::Tensor c = cov.to(at::kDouble);
  if (!c.isfinite().all().item<bool>()) throw InputError(where + ": holds NaN or Inf");
  const double scale = c.abs().max().item<double>();
  if (!at::allclose(c, c.t(), 1e-9, 1e-12 * scale)) throw InputError(where + ": is not symmetric");
  const at::Tensor values = eigenvalues(c, where);
  const double lo = values.min().item<double>(), hi = values.abs().max().item<double>();
  if (lo < -kCovarianceTolerance * hi) {
    char text[160];
    std::snprintf(text, sizeof text, ": is not positive semi-definite (eigenvalue %.6g, largest magnitude %.6g)", lo, hi);
    throw InputError(where + text);
  }
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  if (a.dim() != b.dim())
    throw InputError("Fréchet distance of features of different sizes: " + std::to_string(a.dim()) + " vs " +
                     std::to_string(b.dim()));
  check_covariance(a.cov, "Fréchet distance: the first covariance");
  check_covariance(b.cov, "Fréchet distance: the second covariance");
  if (!a.mean.isfinite().all().item<bool>() || !b.mean.isfinite().all().item<bool>())
    throw InputError("Fréchet distance: a mean holds NaN or Inf");
  const at::Tensor root = sqrt_psd(a.cov);
  at::Tensor m = root.mm(b.cov).mm(root);
  m = (m + m.t()) * 0.5;  // symmetric up to rounding
  const double tr_sqrt = at::linalg_eigvalsh(m).clamp_min(0).sqrt().sum().item<double>();
  const double mean_term = (a.mean - b.mean).pow(2).sum().item<double>();
  // Non-negative in exact arithmetic for valid statistics (checked above); rounding can
  // leave a small negative value (e.g. a set against its own statistics: √ of eigenvalues
  // at rounding level), which is reported as 0.
  const double d = mean_term + a.cov.trace().item<double>() + b.cov.trace().item<double>() - 2 * tr_sqrt;
  if (!std::isfinite(d))
    throw InputError("Fréchet distance: not computable from these statistics (got " + std::to_string(d) + ")");
  return std::max(0.0, d);
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
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->device = c10::Device(device);
  impl->module = load_torchscript(path, "feature model", "TorchScript file", impl->device);
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
