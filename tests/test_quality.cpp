// Quality measures: the Fréchet distance against independent computations, statistics
// files, feature models, and class agreement on class-conditional samples.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "diffode/core/error.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/core/quality.hpp"
#include "diffode/runs/samples.hpp"
#include "test_util.hpp"

using namespace diffode;
using test::error_of;
namespace fs = std::filesystem;

namespace {

FeatureStats stats_of(const at::Tensor& mean, const at::Tensor& cov) {
  FeatureStats s;
  s.mean = mean.to(at::kDouble);
  s.cov = cov.to(at::kDouble);
  s.count = 100;
  return s;
}

at::Tensor random_spd(int64_t f, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor a = at::randn({f, f}, gen, at::kDouble);
  return a.mm(a.t()) + 0.1 * at::eye(f, at::kDouble);
}


}  // namespace

TEST(Frechet, DiagonalCovariancesHaveTheClosedForm) {
  const at::Tensor va = at::tensor({1.0, 4.0, 0.25}, at::kDouble), vb = at::tensor({9.0, 1.0, 1.0}, at::kDouble);
  const FeatureStats a = stats_of(at::tensor({0.0, 1.0, 2.0}, at::kDouble), at::diag(va));
  const FeatureStats b = stats_of(at::tensor({1.0, 1.0, 0.0}, at::kDouble), at::diag(vb));
  // ||μa − μb||² + Σ (√a_i − √b_i)² = (1 + 0 + 4) + (4 + 1 + 0.25)
  EXPECT_NEAR(frechet_distance(a, b), 10.25, 1e-12);
}

TEST(Frechet, MatchesTheGeneralEigenvalueRoute) {
  const int64_t f = 6;
  const FeatureStats a = stats_of(at::zeros({f}), random_spd(f, 1)), b = stats_of(at::ones({f}), random_spd(f, 2));
  // Independent route: tr (Σa Σb)^½ = Σ √λ over the (real, positive) eigenvalues of Σa Σb.
  const at::Tensor lambda = at::real(at::linalg_eigvals(a.cov.mm(b.cov)));
  const double expected = static_cast<double>(f) + a.cov.trace().item<double>() + b.cov.trace().item<double>() -
                          2 * lambda.sqrt().sum().item<double>();
  EXPECT_NEAR(frechet_distance(a, b), expected, 1e-9 * expected);
  EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-9);
  EXPECT_NEAR(frechet_distance(a, b), frechet_distance(b, a), 1e-9);
}

TEST(Frechet, StatsAreMeanAndUnbiasedCovariance) {
  const at::Tensor x = at::tensor({1.0, 2.0, 3.0, 5.0, 0.0, 1.0}, at::kDouble).view({3, 2});
  const FeatureStats s = feature_stats(x);
  EXPECT_EQ(s.count, 3);
  EXPECT_NEAR(s.mean[0].item<double>(), 4.0 / 3, 1e-15);
  EXPECT_NEAR(s.cov[0][0].item<double>(), (std::pow(1 - 4.0 / 3, 2) + std::pow(3 - 4.0 / 3, 2) + std::pow(4.0 / 3, 2)) / 2,
              1e-12);
  EXPECT_THROW(feature_stats(x.slice(0, 0, 1)), InputError);
}

TEST(StatsFile, RoundTripsExactly) {
  test::TempDir dir;
  const FeatureStats s = stats_of(at::tensor({0.5, -1.25}, at::kDouble), random_spd(2, 3));
  save_reference_stats(dir.path / "s.json", s, "abc");
  const ReferenceStats r = load_reference_stats(dir.path / "s.json");
  EXPECT_TRUE(at::equal(r.stats.mean, s.mean));
  EXPECT_TRUE(at::equal(r.stats.cov, s.cov));
  EXPECT_EQ(r.feature_model_sha256, "abc");
}

TEST(StatsFile, CorruptOrInconsistentFilesAreNamed) {
  test::TempDir dir;
  auto write = [&](const std::string& text) {
    std::ofstream(dir.path / "s.json") << text;
    return error_of([&] { load_reference_stats(dir.path / "s.json"); });
  };
  EXPECT_NE(write("{\"feature_dim\": 2,").find("malformed JSON"), std::string::npos);
  EXPECT_NE(write("{\"feature_dim\": 2, \"count\": 5, \"mean\": [0, 1, 2], \"cov\": [[1, 0], [0, 1]]}").find(
                "/mean: has 3 values, feature_dim is 2"),
            std::string::npos);
  EXPECT_NE(write("{\"feature_dim\": 2, \"count\": 5, \"mean\": [0, 1], \"cov\": [[1, 0], [0]]}").find("/cov/1"),
            std::string::npos);
  EXPECT_NE(write("{\"feature_dim\": 2, \"count\": 5, \"mean\": [0, 1], \"cov\": [[1, 0.5], [0, 1]]}").find(
                "not symmetric"),
            std::string::npos);
  EXPECT_NE(write("[1, 2]").find("/feature_dim: expected an integer"), std::string::npos);
  EXPECT_NE(error_of([&] { load_reference_stats(dir.path / "none.json"); }).find("does not exist"), std::string::npos);
}

TEST(FeatureModel, ModelWithoutFeaturesIsRefused) {
  const std::string msg = error_of([] { FeatureModel::load(test::model_path("gauss.pt"), {3, 8, 8}); });
  EXPECT_NE(msg.find("has no features(x) method"), std::string::npos) << msg;
}

TEST(FeatureModel, ShippedFeatureModelMatchesItsStatistics) {
  const FeatureModel m = FeatureModel::load(test::model_path("fmnist_features.pt"), {1, 28, 28});
  const ReferenceStats ref = load_reference_stats(test::model_path("fmnist_features.test_stats.json"));
  EXPECT_EQ(m.feature_dim(), ref.stats.dim());
  EXPECT_EQ(ref.feature_model_sha256, m.sha256());
  EXPECT_TRUE(m.has_logits());
  FeatureStats other = ref.stats;
  other.mean = other.mean.slice(0, 0, 3);
  ReferenceStats small{other, ""};
  const std::string msg = error_of([&] { check_reference(m, small, "small.json"); });
  EXPECT_NE(msg.find("gives " + std::to_string(m.feature_dim()) + " features, but statistics small.json hold 3"),
            std::string::npos)
      << msg;
}

TEST(Agreement, CountsOnlyRealClasses) {
  const FeatureModel m = FeatureModel::load(test::model_path("fmnist_features.pt"), {1, 28, 28});
  QualityMeter meter(m);
  const at::Tensor x = at::zeros({4, 1, 28, 28});
  const int64_t pred = m.logits(x).argmax(1)[0].item<int64_t>();
  meter.add(x, {pred, pred, (pred + 1) % 10, 10}, 10);  // the last is the null class: not counted
  ASSERT_TRUE(meter.class_agreement().has_value());
  EXPECT_NEAR(*meter.class_agreement(), 2.0 / 3, 1e-12);
  EXPECT_EQ(meter.count(), 4);
}

// Samples holding NaN or Inf give no statistics and no Fréchet distance: refused by name.
TEST(Samples, NonFiniteSamplesAreRefusedByName) {
  test::TempDir tmp;
  std::vector<float> x(4 * 3, 0.5f);
  x[5] = std::nanf("");
  x[7] = INFINITY;
  const auto file = tmp.path / "s.npy";
  write_npy(file, {4, 3}, x.data());
  try {
    load_samples(file);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "array " + file.string() + ": 2 values are NaN or Inf; statistics of such samples mean nothing");
  }
  x[5] = x[7] = 0.25f;
  write_npy(file, {4, 3}, x.data());
  EXPECT_EQ(load_samples(file).samples.size(0), 4);
}

// A covariance with a negative eigenvalue is no covariance: frechet_distance gave 0 for
// such statistics. It is refused, naming the file when it comes from one.
TEST(StatsFile, NonPositiveSemiDefiniteCovarianceIsRefused) {
  const at::Tensor bad = at::tensor({1.0, 2.0, 2.0, 1.0}, at::kDouble).view({2, 2});  // eigenvalues 3, -1
  const FeatureStats a = stats_of(at::zeros({2}), bad), b = stats_of(at::zeros({2}), at::eye(2, at::kDouble));
  for (const auto& p : {std::pair{a, b}, std::pair{b, a}, std::pair{a, a}}) {
    const std::string msg = error_of([&] { frechet_distance(p.first, p.second); });
    EXPECT_NE(msg.find("is not positive semi-definite (eigenvalue -1"), std::string::npos) << msg;
  }
  test::TempDir dir;
  const fs::path file = dir.path / "s.json";
  std::ofstream(file) << R"({"feature_dim": 2, "count": 10, "mean": [0, 0], "cov": [[1, 2], [2, 1]]})";
  const std::string msg = error_of([&] { load_reference_stats(file); });
  EXPECT_NE(msg.find("statistics " + file.string() + ": /cov: is not positive semi-definite"), std::string::npos)
      << msg;
  // Rounding below the tolerance is not refused: a rank-deficient covariance is valid.
  const at::Tensor x = at::randn({3, 8}, at::kDouble);
  const FeatureStats low_rank = feature_stats(x);
  EXPECT_NEAR(frechet_distance(low_rank, low_rank), 0.0, 1e-9);
}
