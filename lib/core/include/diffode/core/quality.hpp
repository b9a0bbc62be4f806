#pragma once
// Sample quality as the field measures it: the Fréchet distance between Gaussian
// statistics of features (FID's formula, any feature model with features(x)), and class
// agreement (how many class-conditional samples a classifier assigns their class).
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>


namespace diffode {

// Mean and covariance (unbiased) of N feature vectors, float64.
struct FeatureStats {
  at::Tensor mean;  // [F]
  at::Tensor cov;   // [F, F]
  int64_t count = 0;
  int64_t dim() const { return mean.size(0); }
};

// Statistics of features [N, F] (N >= 2), computed in float64.
FeatureStats feature_stats(const at::Tensor& features);

// A covariance is a finite symmetric positive semi-definite matrix: its eigenvalues are
// >= −kCovarianceTolerance × the largest magnitude (rounding). Otherwise an InputError
// "<where>: is not positive semi-definite (eigenvalue …)".
constexpr double kCovarianceTolerance = 1e-6;
void check_covariance(const at::Tensor& cov, const std::string& where);

// ||μ1 − μ2||² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), float64, with tr (Σ1 Σ2)^½ = Σ √λ of
// Σ1^½ Σ2 Σ1^½ (symmetric eigendecompositions; tiny negative eigenvalues clamped to 0).
// Both covariances are checked (check_covariance): invalid statistics are an InputError,
// never a distance of 0.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

// Reference statistics (a file of them: runs/samples.hpp) and the feature model they name.
struct ReferenceStats {
  FeatureStats stats;
  std::string feature_model_sha256;  // "" if the file names none
};

// A TorchScript feature model: features(x) -> [B, F]; optionally forward(x) -> logits.
class FeatureModel {
 public:
  static FeatureModel load(const std::filesystem::path& path, const std::vector<int64_t>& sample_shape,
                           const std::string& device = "cpu");
  at::Tensor features(const at::Tensor& x) const;  // float32 input in the data range
  at::Tensor logits(const at::Tensor& x) const;    // requires has_logits()
  bool has_logits() const;
  int64_t feature_dim() const;
  const std::string& sha256() const;
  const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Accumulates features (and classifier agreement) batch by batch.
class QualityMeter {
 public:
  explicit QualityMeter(const FeatureModel& model) : model_(model) {}
  // samples [B, *shape] float32; labels empty or one per sample (labels >= num_classes,
  // the null class, are not counted for agreement).
  void add(const at::Tensor& samples, const std::vector<int64_t>& labels, int64_t num_classes);
  int64_t count() const;
  FeatureStats stats() const;
  std::optional<double> class_agreement() const;  // none without labels or logits

 private:
  const FeatureModel& model_;
  std::vector<at::Tensor> features_;
  int64_t agree_ = 0, labelled_ = 0;
};

// Samples to judge (runs/samples.hpp reads them from a run folder or a .npy file).
struct SampleSet {
  at::Tensor samples;  // [N, *sample_shape] float32
  std::vector<int64_t> labels;  // one per sample, or empty
  int64_t num_classes = 0;
  std::vector<int64_t> sample_shape() const;
};

// Features (and agreement) of a whole set, `batch` samples at a time.
QualityMeter measure_quality(const FeatureModel& model, const SampleSet& set, int64_t batch);

// A feature model and reference statistics checked against each other (a config's `eval`).
struct Evaluation {
  FeatureModel features;
  ReferenceStats reference;
};

// InputError unless the feature model's size matches the statistics (`where` names them);
// a warning when the statistics name another feature model.
void check_reference(const FeatureModel& model, const ReferenceStats& ref, const std::string& where);

}  // namespace diffode
