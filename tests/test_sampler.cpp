// Sampling runs: seeded noise identical to Python's, samples independent of batch size
// and thread count, non-finite model outputs stopped with their step.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "diffode/runs/config.hpp"
#include "diffode/core/error.hpp"
#include "diffode/runs/run.hpp"
#include "diffode/runs/sampler.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/png.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/model.hpp"
#include "test_util.hpp"

using namespace diffode;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Config config_for(const std::string& model, json extra) {
  json j = {{"model", {{"path", test::model_path(model).string()}}}};
  j.merge_patch(extra);
  return parse_config(j, "test.json", test::repo());
}

// Runs `cfg` into a fresh directory and returns the bytes of samples.npy.
std::string run_npy(const Config& cfg) {
  test::TempDir dir;
  run_sample(cfg, dir.path);
  return read_file(dir.path / "samples.npy");
}

}  // namespace

TEST(Noise, MatchesTorchManualSeedRandn) {
  const json ref = json::parse(read_file(test::data_path("randn_reference.json")));
  for (const auto& c : ref["cases"]) {
    const auto shape = c["shape"].get<std::vector<int64_t>>();
    const auto values = c["values"].get<std::vector<float>>();
    const int64_t seed = c["seed"].get<int64_t>();
    // Sample k of a run with seed `seed - k` draws from seed `seed`.
    const Tensor x = make_noise(seed - 2, 2, 1, shape)[0].contiguous();
    ASSERT_EQ(x.numel(), static_cast<int64_t>(values.size()));
    const float* p = x.data_ptr<float>();
    for (size_t i = 0; i < values.size(); ++i) ASSERT_EQ(p[i], values[i]) << "seed " << seed << " index " << i;
  }
}

// Samples of fewer than 16 values take diffode's own short path to torch's numbers: it must
// equal at::randn on a CPU generator for every size and for seeds past 32 bits.
TEST(Noise, SmallSamplesEqualTorchRandnForEverySize) {
  std::vector<uint64_t> seeds;
  for (uint64_t s = 0; s < 200; ++s) seeds.push_back(s);
  for (uint64_t s : {uint64_t{2147483647}, uint64_t{2147483648}, uint64_t{4294967295}, uint64_t{4294967296},
                     uint64_t{4294967303}, (uint64_t{1} << 40) + 3, uint64_t{123456789012345}})
    seeds.push_back(s);
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}, {13}, {14}, {15}, {16}, {17}, {3, 5}, {2, 2, 2}}) {
    for (uint64_t s : seeds) {
      at::Generator gen = at::detail::createCPUGenerator(s);
      const Tensor want = at::randn(shape, gen, at::kFloat);
      const Tensor got = make_noise(static_cast<int64_t>(s), 0, 1, shape)[0];
      ASSERT_TRUE(at::equal(got, want)) << "shape numel " << want.numel() << " seed " << s;
    }
  }
  // many rows on several threads: each row as alone
  const Tensor many = make_noise(1000, 0, 300, {3});
  for (int64_t k : {0, 64, 299}) {
    at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(1000 + k));
    EXPECT_TRUE(at::equal(many[k], at::randn({3}, gen, at::kFloat))) << k;
  }
}

TEST(Noise, SampleDependsOnlyOnItsSeed) {
  const Tensor all = make_noise(10, 0, 5, {2});
  for (int64_t k = 0; k < 5; ++k) EXPECT_TRUE(at::equal(all[k], make_noise(10 + k, 0, 1, {2})[0]));
  // Many rows are drawn by several threads: still each row as if alone.
  set_threads(2);
  const Tensor many = make_noise(7, 0, 1000, {2});
  set_threads(1);
  const Tensor serial = make_noise(7, 0, 1000, {2});
  EXPECT_TRUE(at::equal(many, serial));
  for (int64_t k : {0, 63, 64, 500, 999}) EXPECT_TRUE(at::equal(many[k], make_noise(7 + k, 0, 1, {2})[0])) << k;
  set_threads(0);
}

TEST(Run, SamplesAreBitIdenticalWhateverTheBatchSizeAndThreads) {
  for (const char* model : {"fmnist_exact.pt", "gmm2d.pt"}) {
    const json base = {{"solver", {{"name", "dpmpp2m"}, {"steps", 6}}}, {"sampling", {{"num_samples", 7}}}};
    json b1 = base, b3 = base, t1 = base;
    b1["sampling"]["batch_size"] = 7;
    b3["sampling"]["batch_size"] = 3;
    t1["sampling"]["batch_size"] = 2;
    t1["model"]["threads"] = 1;
    const std::string ref = run_npy(config_for(model, b1));
    EXPECT_EQ(run_npy(config_for(model, b3)), ref) << model;
    EXPECT_EQ(run_npy(config_for(model, t1)), ref) << model;
  }
}

TEST(Run, NpyHoldsTheIntegratedSamples) {
  const Config cfg = config_for("gauss.pt", {{"solver", {{"name", "heun"}, {"steps", 5}, {"precision", "float32"}}},
                                            {"sampling", {{"num_samples", 3}, {"seed", 5}}}});
  const std::string npy = run_npy(cfg);
  const std::string header = npy_header({3, 3, 8, 8});
  ASSERT_EQ(npy.size(), header.size() + 3 * 192 * sizeof(float));
  EXPECT_EQ(npy.substr(0, header.size()), header);
  const Model m = Model::load({test::model_path("gauss.pt")});
  ModelDenoiser den(m, at::kFloat);
  const Grid g = make_grid(cfg.schedule, 5, {m.meta().sigma_min, m.meta().sigma_max, m.meta().process});
  const Tensor x = integrate(find_solver("heun"), den, make_noise(5, 0, 3, {3, 8, 8}), g, {}, false).contiguous();
  EXPECT_EQ(std::memcmp(npy.data() + header.size(), x.data_ptr<float>(), 3 * 192 * sizeof(float)), 0);
}

TEST(Run, ManifestRecordsTheRunAndARerunIsSkipped) {
  test::TempDir dir;
  const Config cfg = config_for("gmm2d.pt", {{"solver", {{"name", "euler"}, {"nfe", 4}}},
                                            {"schedule", {{"denoise_to_zero", true}}},
                                            {"sampling", {{"num_samples", 10}, {"batch_size", 4}}}});
  const json m = run_sample(cfg, dir.path);
  EXPECT_EQ(m["run"]["nfe"], 4);
  EXPECT_EQ(m["run"]["solver"]["steps"], 3);  // denoise_to_zero takes one evaluation
  EXPECT_EQ(m["run"]["schedule"]["sigmas"].size(), 4u);
  EXPECT_EQ(m["run"]["model"]["sha256"], sha256_file(test::model_path("gmm2d.pt")));
  EXPECT_EQ(m["seeds"]["count"], 10);
  const auto before = fs::last_write_time(dir.path / "samples.npy");
  const json again = run_sample(cfg, dir.path);
  EXPECT_EQ(again, m);
  EXPECT_EQ(fs::last_write_time(dir.path / "samples.npy"), before);
  const auto text = png_text_chunks(read_file(dir.path / "grid.png"));
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(json::parse(text[0].second), m["run"]);
}

TEST(Run, NonFiniteOutputStopsWithStepAndSigmaAndWritesNothing) {
  test::TempDir dir;
  json j = {{"model", {{"path", test::data_path("nan_model.pt").string()}}},
            {"solver", {{"name", "euler"}, {"steps", 10}}}};
  const Config cfg = parse_config(j, "nan.json", test::repo());
  try {
    run_sample(cfg, dir.path / "out");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("returned NaN or Inf"), std::string::npos) << msg;
    // The polynomial grid (ρ = 7) first drops below σ = 1 at σ_6 = 0.965417.
    EXPECT_NE(msg.find("evaluation 7 (step 7 of 10"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sigma 0.965417"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir.path / "out"));  // the folder it made, empty, is removed too
}

TEST(Conditioning, EachClassSamplesItsOwnComponent) {
  // gmm2d_cond.pt: class c is one Gaussian; the ODE of a single Gaussian ends in it exactly.
  test::TempDir dir;
  const Config cfg = config_for("gmm2d_cond.pt", {{"solver", {{"name", "heun"}, {"steps", 30}}},
                                                 {"sampling", {{"num_samples", 400}, {"batch_size", 400},
                                                               {"labels", std::vector<int64_t>(400, 0)}}}});
  const json m = run_sample(cfg, dir.path);
  EXPECT_EQ(m["labels"].size(), 400u);
  const NpyArray a = read_npy(dir.path / "samples.npy");
  const Tensor x = at::tensor(a.data).view({400, 2}).to(at::kDouble);
  // Component 0: mean (0, 2), std 0.05.
  EXPECT_NEAR(x.select(1, 0).mean().item<double>(), 0.0, 0.02);
  EXPECT_NEAR(x.select(1, 1).mean().item<double>(), 2.0, 0.02);
  EXPECT_NEAR(x.std(0).mean().item<double>(), 0.05, 0.01);
}

TEST(Conditioning, GuidanceCountsOneEvaluationAndTwoPasses) {
  test::TempDir dir;
  const Config cfg = config_for("gmm2d_cond.pt", {{"solver", {{"name", "euler"}, {"nfe", 7}}},
                                                 {"sampling", {{"num_samples", 16}, {"labels", "cycle"},
                                                               {"guidance", 3.0}}}});
  const json m = run_sample(cfg, dir.path);
  EXPECT_EQ(m["run"]["nfe"], 7);
  EXPECT_EQ(m["run"]["network_passes_per_sample"], 14);
  EXPECT_EQ(m["labels"][9], 1);  // cycle: 9 mod 8
}

TEST(Conditioning, RandomLabelsComeFromTheSampleSeed) {
  const Labels s{Labels::Rule::random, {}};
  const auto all = sample_labels(s, 4, 10, {2}, 0, 20);
  const SampleInputs in = sample_inputs(s, 4, 10, {2}, 0, 20);  // one pass: the same labels, the same noise
  EXPECT_EQ(in.labels, all);
  EXPECT_TRUE(at::equal(in.noise, make_noise(4, 0, 20, {2})));
  const SampleInputs big = sample_inputs(s, 4, 10, {3, 8, 8}, 5, 3);  // the tensor path of the noise
  EXPECT_TRUE(at::equal(big.noise, make_noise(4, 5, 3, {3, 8, 8})));
  EXPECT_EQ(big.labels, sample_labels(s, 4, 10, {3, 8, 8}, 5, 3));
  for (int64_t k = 0; k < 20; ++k) {
    EXPECT_EQ(sample_labels(s, 4, 10, {2}, k, 1)[0], all[static_cast<size_t>(k)]);
    EXPECT_GE(all[static_cast<size_t>(k)], 0);
    EXPECT_LT(all[static_cast<size_t>(k)], 10);
  }
  EXPECT_GT(std::set<int64_t>(all.begin(), all.end()).size(), 4u);
}

TEST(Conditioning, BadLabelsAndGuidanceAreNamed) {
  test::TempDir dir;
  auto error_of = [&](const std::string& model, json sampling) {
    try {
      run_sample(config_for(model, {{"sampling", sampling}}), dir.path / "out");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of("gmm2d.pt", {{"labels", "cycle"}}).find("is not class-conditional"), std::string::npos);
  EXPECT_NE(error_of("gmm2d_cond.pt", {{"num_samples", 2}, {"labels", {3, 9}}}).find("/sampling/labels/1: label 9"),
            std::string::npos);
  EXPECT_NE(error_of("gmm2d_cond.pt", {{"guidance", 2.0}}).find("guidance needs class labels"), std::string::npos);
  EXPECT_NE(error_of("gauss.pt", {{"guidance", 2.0}}).find("has no null class"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path / "out"));
}

TEST(Conditioning, AListRepeatsOverTheSamples) {
  Labels s{Labels::Rule::list, {2, 5}};
  EXPECT_EQ(sample_labels(s, 0, 8, {2}, 0, 5), (std::vector<int64_t>{2, 5, 2, 5, 2}));
  EXPECT_EQ(sample_labels(s, 0, 8, {2}, 3, 2), (std::vector<int64_t>{5, 2}));
  s.rule = Labels::Rule::cycle;
  EXPECT_EQ(sample_labels(s, 0, 3, {2}, 2, 3), (std::vector<int64_t>{2, 0, 1}));
  EXPECT_TRUE(sample_labels(Labels{}, 0, 3, {2}, 0, 3).empty());
  try {
    config_for("gmm2d_cond.pt", {{"sampling", {{"labels", json::array()}}}});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/sampling/labels: is an empty list"), std::string::npos) << e.what();
  }
}
