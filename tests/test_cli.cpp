// The built CLI end to end (DESIGN.md §7, §8): the listing commands, `info`, `sample` on
// every shipped config with its outputs, re-runs, and every bad input of §7 (exit code 2,
// a message naming the file and the key or value, no file left in the output directory).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffode/core/amed_predictor.hpp"
#include "diffode/runs/config.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/png.hpp"
#include "diffode/core/process.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"
#include "diffode/version.hpp"
#include "test_cli_util.hpp"

namespace {

using namespace diffode::test::cli;

uint32_t le16(const std::string& s, size_t at) { return uint8_t(s[at]) | uint32_t(uint8_t(s[at + 1])) << 8; }

// The shape in an npy header and the header's length.
std::pair<std::vector<int64_t>, size_t> npy_shape(const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, std::string("\x93NUMPY", 6)) != 0) {
    ADD_FAILURE() << "not an npy file";
    return {{}, 0};
  }
  const size_t header = 10 + le16(bytes, 8);
  const std::string dict = bytes.substr(10, header - 10);
  EXPECT_NE(dict.find("'descr': '<f4'"), std::string::npos) << dict;
  EXPECT_NE(dict.find("'fortran_order': False"), std::string::npos) << dict;
  EXPECT_NE(dict.find("'shape': ("), std::string::npos) << dict;
  return {diffode::test::npy_dict_shape(dict), header};
}

double sigma_value(const json& s) {
  if (s.is_string() && s.get<std::string>() == "inf") return INFINITY;
  return s.get<double>();
}

// A quick config on gauss.pt (edm / x0, [3, 8, 8]).
json gauss_config(const fs::path& model = model_path("gauss.pt")) {
  return {{"model", {{"path", model.string()}}},
          {"solver", {{"name", "euler"}, {"steps", 4}}},
          {"sampling", {{"num_samples", 4}, {"batch_size", 4}, {"seed", 0}}}};
}

// ---------------------------------------------------------------- listing commands

TEST(CliBasics, VersionPrintsTheVersionAndExitsZero) {
  const CliResult r = run_cli("--version");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, std::string("diffode ") + diffode::kVersion));
}

TEST(CliBasics, HelpListsTheSubcommandsAndExitsZero) {
  const CliResult r = run_cli("--help");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* cmd : {"sample", "info", "solvers", "schedules"}) EXPECT_TRUE(Contains(r.output, cmd));
}

TEST(CliBasics, SolversListsEverySolverAndExitsZero) {
  const CliResult r = run_cli("solvers");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const auto& name : diffode::solver_names()) EXPECT_TRUE(Contains(r.output, name));
  EXPECT_TRUE(Contains(r.output, "2N"));
}

TEST(CliBasics, SchedulesListsEveryScheduleAndExitsZero) {
  const CliResult r = run_cli("schedules");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const auto& name : diffode::schedule_names()) EXPECT_TRUE(Contains(r.output, name));
  EXPECT_TRUE(Contains(r.output, "beta_min,beta_max"));  // vp_time's params
}

TEST(CliBasics, UnknownSubcommandIsBadInput) {
  const CliResult r = run_cli("smaple");
  EXPECT_EQ(r.code, 2) << r.output;
  expect_clean_error(r);
  EXPECT_TRUE(Contains(r.output, "error: unknown command 'smaple' (did you mean 'sample'?); valid: sample, compare, "
                                 "distill, tune, merge, info, eval, stats, solvers, schedules"));
  // A name near none of them: no suggestion, the valid ones listed.
  const CliResult far = run_cli("xyzzy");
  EXPECT_EQ(far.code, 2) << far.output;
  EXPECT_TRUE(Contains(far.output, "error: unknown command 'xyzzy'; valid: sample, compare,"));
  EXPECT_EQ(far.output.find("did you mean"), std::string::npos) << far.output;
}

TEST(CliBasics, UnknownOptionIsBadInput) {
  const CliResult r = run_cli("sample -c configs/gauss.json --bogus");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--bogus"));
}

// ---------------------------------------------------------------- info

TEST(CliInfo, PrintsShaPredictionAndShape) {
  const fs::path model = model_path("gauss.pt");
  const CliResult r = run_cli("info " + q(model));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, diffode::sha256_file(model)));
  EXPECT_TRUE(Contains(r.output, "prediction   x0"));
  EXPECT_TRUE(Contains(r.output, "edm"));
  EXPECT_TRUE(Contains(r.output, "[3,8,8]"));
  EXPECT_TRUE(Contains(r.output, "forward"));
}

TEST(CliInfo, WorksOnTheOtherShippedModels) {
  // (Each CLI start loads LibTorch, about a second: the models in models/gauss/ are left to test_model.)
  for (const auto& m : {model_path("gmm2d.pt"), model_path("fmnist_exact.pt")}) {
    const CliResult r = run_cli("info " + q(m));
    EXPECT_EQ(r.code, 0) << m << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, diffode::sha256_file(m)));
  }
}

TEST(CliInfo, ModelWithoutMetadataIsDescribed) {
  // `info` has no config to put model.* overrides in: a plain network (no diffode.json)
  // should still be described, saying the metadata is missing (DESIGN.md §5, §7).
  const CliResult r = run_cli("info " + q(data_path("no_meta.pt")));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, diffode::sha256_file(data_path("no_meta.pt"))));
  EXPECT_TRUE(Contains(r.output, "diffode.json missing"));
}

TEST(CliInfo, BrokenModelIsBadInputNamingTheFile) {
  // The other broken models go through the same loader: see CliBadInput.
  const CliResult r = run_cli("info " + q(data_path("wrong_shape.pt")));
  EXPECT_EQ(r.code, 2) << r.output;
  expect_clean_error(r);
  EXPECT_TRUE(Contains(r.output, data_path("wrong_shape.pt").string()));
  EXPECT_TRUE(Contains(r.output, "returned shape [2, 1, 8, 8]"));
}

// ---------------------------------------------------------------- sample on the shipped configs

std::vector<std::string> shipped_configs() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(repo() / "configs"))
    if (e.path().extension() == ".json") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class CliShippedConfig : public ::testing::TestWithParam<std::string> {};

TEST_P(CliShippedConfig, SampleWritesGridNpyAndManifestAndARerunIsComplete) {
  const fs::path config = repo() / "configs" / GetParam();
  const diffode::Config cfg = diffode::load_config(config);
  TempDir tmp;
  // From an unrelated working directory, with -o relative to it.
  const std::string cmd =
      "sample -c " + q(config) + " --set sampling.num_samples=8 --set sampling.batch_size=4 -o out";
  const CliResult r = run_cli(cmd, tmp.path);
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path out = tmp.path / "out";
  EXPECT_TRUE(Contains(r.output, out.string()));

  ASSERT_TRUE(fs::is_regular_file(out / "grid.png")) << joined(files_under(out));
  ASSERT_TRUE(fs::is_regular_file(out / "samples.npy")) << joined(files_under(out));
  ASSERT_TRUE(fs::is_regular_file(out / "manifest.json")) << joined(files_under(out));

  // manifest.json
  const json manifest = json::parse(read_file(out / "manifest.json"));
  ASSERT_TRUE(manifest.contains("run")) << manifest.dump(2);
  const json& run = manifest["run"];
  EXPECT_EQ(run["model"]["sha256"], diffode::sha256_file(cfg.model.path));
  EXPECT_EQ(run["diffode_version"], diffode::kVersion);
  ASSERT_TRUE(run["nfe"].is_number_integer()) << run.dump(2);
  EXPECT_GT(run["nfe"].get<int>(), 0);
  EXPECT_EQ(run["nfe"], run["solver"]["nfe"]);
  if (cfg.solver.nfe) {
    EXPECT_EQ(run["nfe"].get<int>(), *cfg.solver.nfe);
  }
  if (cfg.solver.steps) {
    EXPECT_EQ(run["solver"]["steps"].get<int>(), *cfg.solver.steps);
  }
  EXPECT_EQ(run["solver"]["name"], cfg.solver.info().name);
  EXPECT_EQ(run["config"]["sampling"]["num_samples"], 8);
  EXPECT_EQ(run["config"]["sampling"]["batch_size"], 4);
  const json& sigmas = run["schedule"]["sigmas"];
  ASSERT_TRUE(sigmas.is_array());
  EXPECT_EQ(sigmas.size(), run["solver"]["steps"].get<size_t>() + 1);
  for (size_t i = 1; i < sigmas.size(); ++i) EXPECT_LT(sigma_value(sigmas[i]), sigma_value(sigmas[i - 1])) << i;
  EXPECT_EQ(manifest["seeds"]["first"], cfg.sampling.seed);
  EXPECT_EQ(manifest["seeds"]["count"], 8);

  // Every listed file exists, and nothing else is there (no temporaries).
  std::vector<std::string> listed = {"manifest.json", "timings.json"};
  for (const auto& f : manifest["files"]) {
    listed.push_back(f.get<std::string>());
    EXPECT_TRUE(fs::is_regular_file(out / f.get<std::string>())) << f;
  }
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(files_under(out), listed);
  if (cfg.output.png) {
    for (int k = 0; k < 8; ++k) {
      const std::string png = read_file(out / "samples" / (std::to_string(k) + ".png"));
      EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << k;
    }
  }

  // samples.npy: [8, *sample_shape] float32, header + data and nothing more, all finite.
  const std::string npy = read_file(out / "samples.npy");
  const auto [shape, header] = npy_shape(npy);
  std::vector<int64_t> expect = {8};
  for (const auto& d : run["model"]["metadata"]["sample_shape"]) expect.push_back(d.get<int64_t>());
  EXPECT_EQ(shape, expect);
  EXPECT_EQ(header % 64, 0u);
  int64_t count = 1;
  for (auto d : expect) count *= d;
  ASSERT_EQ(npy.size(), header + static_cast<size_t>(count) * 4);
  std::vector<float> values(static_cast<size_t>(count));
  std::memcpy(values.data(), npy.data() + header, values.size() * 4);
  for (float v : values) ASSERT_TRUE(std::isfinite(v));

  // grid.png carries the run as JSON in its tEXt chunk "diffode".
  const std::string png = read_file(out / "grid.png");
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const auto texts = diffode::png_text_chunks(png);
  const auto it = std::find_if(texts.begin(), texts.end(), [](const auto& t) { return t.first == "diffode"; });
  ASSERT_NE(it, texts.end());
  EXPECT_EQ(json::parse(it->second), run);

  // The same command again: the run is complete, nothing is rewritten.
  const auto before = snapshot(out);
  const auto manifest_time = fs::last_write_time(out / "manifest.json");
  const CliResult again = run_cli(cmd, tmp.path);
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(Contains(again.output, "complete"));
  EXPECT_EQ(fs::last_write_time(out / "manifest.json"), manifest_time);
  const auto after = snapshot(out);
  EXPECT_EQ(after.size(), before.size());
  for (const auto& [name, bytes] : before) EXPECT_TRUE(after.count(name) && after.at(name) == bytes) << name;
}

INSTANTIATE_TEST_SUITE_P(Shipped, CliShippedConfig, ::testing::ValuesIn(shipped_configs()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = fs::path(info.param).stem().string();
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

// ---------------------------------------------------------------- sample: paths and re-runs

TEST(CliSample, RelativeModelPathResolvesAgainstTheConfigFolder) {
  TempDir tmp;
  json j = gauss_config();
  j["model"]["path"] = fs::relative(model_path("gauss.pt"), tmp.path / "cfgs").string();
  ASSERT_TRUE(fs::path(j["model"]["path"].get<std::string>()).is_relative());
  const fs::path cfg = write_json(tmp.path / "cfgs" / "c.json", j);
  const CliResult r = run_cli("sample -c " + q(cfg) + " -o " + q(tmp.path / "out"), repo() / "tests");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp.path / "out" / "manifest.json"));
}

TEST(CliSample, SetPathResolvesAgainstTheWorkingDirectory) {
  TempDir tmp;
  json j = gauss_config();
  j["model"]["path"] = "/nonexistent/model.pt";
  const fs::path cfg = write_json(tmp.path / "c.json", j);
  // From the repository root, models/gauss.pt exists.
  const CliResult ok = run_cli("sample -c " + q(cfg) + " --set model.path=models/gauss.pt -o " + q(tmp.path / "ok"));
  EXPECT_EQ(ok.code, 0) << ok.output;
  // From the temporary directory, it does not: the message names the path there.
  const CliResult bad = run_cli("sample -c " + q(cfg) + " --set model.path=models/gauss.pt -o bad", tmp.path);
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_TRUE(Contains(bad.output, (tmp.path / "models" / "gauss.pt").string()));
  EXPECT_TRUE(files_under(tmp.path / "bad").empty());
}

TEST(CliSample, DefaultOutputDirIsRunsSlashConfigNameInTheWorkingDirectory) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "cfgs" / "tiny.json", gauss_config());
  const CliResult r = run_cli("sample -c " + q(cfg), tmp.path);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp.path / "runs" / "tiny" / "manifest.json")) << joined(files_under(tmp.path));
}

TEST(CliSample, OutputDirInTheConfigResolvesAgainstTheConfigFolder) {
  TempDir tmp;
  json j = gauss_config();
  j["output"] = {{"dir", "results/here"}};
  const fs::path cfg = write_json(tmp.path / "cfgs" / "c.json", j);
  const CliResult r = run_cli("sample -c " + q(cfg), repo() / "tests");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp.path / "cfgs" / "results" / "here" / "manifest.json")) << joined(files_under(tmp.path));
}

TEST(CliSample, AChangedConfigIsSampledAgain) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "c.json", gauss_config());
  const fs::path out = tmp.path / "out";
  ASSERT_EQ(run_cli("sample -c " + q(cfg) + " -o " + q(out)).code, 0);
  const std::string first = read_file(out / "samples.npy");
  const CliResult r = run_cli("sample -c " + q(cfg) + " --set sampling.seed=1 -o " + q(out));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("complete"), std::string::npos) << r.output;
  EXPECT_NE(read_file(out / "samples.npy"), first);
  EXPECT_EQ(json::parse(read_file(out / "manifest.json"))["seeds"]["first"], 1);
  EXPECT_EQ(files_under(out), (std::vector<std::string>{"grid.png", "manifest.json", "samples.npy", "timings.json"}));
}

TEST(CliSample, ModelWithoutMetadataWorksWithOverrides) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "c.json", gauss_config(data_path("no_meta.pt")));
  const CliResult r = run_cli("sample -c " + q(cfg) +
                                  " --set model.prediction=x0 --set model.process.type=edm"
                                  " --set 'model.sample_shape=[3,8,8]' -o " + q(tmp.path / "out"),
                              tmp.path);
  ASSERT_EQ(r.code, 0) << r.output;
  const json run = json::parse(read_file(tmp.path / "out" / "manifest.json"))["run"];
  EXPECT_EQ(run["model"]["metadata"]["prediction"], "x0");
  EXPECT_EQ(run["model"]["metadata"]["sample_shape"], json::parse("[3, 8, 8]"));
}

TEST(CliSample, VpTimeScheduleSamplesAnyModelAndRecordsItsBetas) {
  TempDir tmp;
  json j = gauss_config();  // edm, sigma in [0.002, 80]
  j["schedule"] = {{"name", "vp_time"}, {"beta_max", 19.9}};
  const CliResult r = run_cli("sample -c " + q(write_json(tmp.path / "c.json", j)) + " -o " + q(tmp.path / "edm"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json run = json::parse(read_file(tmp.path / "edm" / "manifest.json"))["run"];
  EXPECT_EQ(run["config"]["schedule"], json::parse(R"({"name": "vp_time", "beta_min": 0.1, "beta_max": 19.9,
                                                      "denoise_to_zero": false})"));
  EXPECT_EQ(run["schedule"]["beta_min"], 0.1);
  EXPECT_EQ(run["schedule"]["beta_max"], 19.9);
  const json& sigmas = run["schedule"]["sigmas"];
  ASSERT_EQ(sigmas.size(), 5u);
  EXPECT_EQ(sigmas.front(), 80.0);
  EXPECT_EQ(sigmas.back(), 0.002);

  // A flow model from t = 1 (sigma_max inf) is told what to set; with it, the grid runs to sigma 0.
  j["model"] = {{"path", model_path("gauss/flow_velocity.pt").string()}, {"sigma_min", 0}, {"sigma_max", "inf"}};
  const fs::path flow = write_json(tmp.path / "flow.json", j);
  const CliResult inf = run_cli("sample -c " + q(flow) + " -o " + q(tmp.path / "inf"));
  EXPECT_EQ(inf.code, 2) << inf.output;
  EXPECT_TRUE(Contains(inf.output, "schedule 'vp_time' needs a finite sigma_max")) << inf.output;
  EXPECT_TRUE(Contains(inf.output, "set model.sigma_max")) << inf.output;
  const CliResult ok = run_cli("sample -c " + q(flow) + " --set model.sigma_max=80 -o " + q(tmp.path / "flow"));
  ASSERT_EQ(ok.code, 0) << ok.output;
  const json flow_sigmas = json::parse(read_file(tmp.path / "flow" / "manifest.json"))["run"]["schedule"]["sigmas"];
  EXPECT_EQ(flow_sigmas.front(), 80.0);
  EXPECT_EQ(flow_sigmas.back(), 0.0);
}

// ---------------------------------------------------------------- bad input: exit 2, clear message, no files

class CliBadInput : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path out() const { return tmp.path / "out"; }
  fs::path config(const json& j, const std::string& name = "cfg.json") { return write_json(tmp.path / name, j); }
  CliResult sample(const fs::path& cfg, const std::string& extra = "") {
    return run_cli("sample -c " + q(cfg) + " -o " + q(out()) + " " + extra, tmp.path);
  }
  // Exit code 2, every part in the message, no file in the output directory.
  void expect_bad_input(const CliResult& r, const std::vector<std::string>& parts) {
    EXPECT_EQ(r.code, 2) << r.output;
    expect_clean_error(r);
    for (const auto& p : parts) EXPECT_TRUE(Contains(r.output, p));
    EXPECT_TRUE(files_under(out()).empty()) << joined(files_under(out()));
  }
};

TEST_F(CliBadInput, MissingConfig) {
  const fs::path cfg = tmp.path / "nope.json";
  expect_bad_input(sample(cfg), {cfg.string(), "does not exist"});
}

TEST_F(CliBadInput, AnEmptyOutputPathIsRefused) {
  const fs::path cfg = config(gauss_config());
  for (const std::string cmd : {"sample", "compare", "tune", "distill"}) {
    const CliResult r = run_cli(cmd + " -c " + q(cfg) + " -o ''", tmp.path);
    EXPECT_EQ(r.code, 2) << cmd << ": " << r.output;
    EXPECT_TRUE(Contains(r.output, "an empty path")) << cmd << ": " << r.output;
  }
  EXPECT_EQ(run_cli("merge " + q(tmp.path) + " -o ''", tmp.path).code, 2);
  EXPECT_FALSE(fs::exists(tmp.path / "runs"));
}

TEST_F(CliBadInput, UnreadableConfig) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read a file with mode 000";
  const fs::path cfg = config(gauss_config());
  ASSERT_EQ(::chmod(cfg.c_str(), 0), 0);
  const CliResult r = sample(cfg);
  ::chmod(cfg.c_str(), 0644);
  expect_bad_input(r, {cfg.string(), "cannot be read"});
}

TEST_F(CliBadInput, MalformedJson) {
  const fs::path cfg = tmp.path / "cfg.json";
  std::ofstream(cfg) << "{\n  \"model\": {\"path\": \"m.pt\"},\n  \"solver\": {\"name\": \"heun\",,}\n}\n";
  expect_bad_input(sample(cfg), {cfg.string() + ":3:", "malformed JSON"});
}

TEST_F(CliBadInput, UnknownKey) {
  json j = gauss_config();
  j["solver"]["stpes"] = 10;
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {cfg.string(), "/solver/stpes", "did you mean 'steps'"});
}

TEST_F(CliBadInput, WrongType) {
  json j = gauss_config();
  j["solver"]["steps"] = "ten";
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {cfg.string(), "/solver/steps", "expected an integer", "\"ten\""});
}

TEST_F(CliBadInput, UnknownSolver) {
  json j = gauss_config();
  j["solver"]["name"] = "hen";
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {cfg.string(), "/solver/name", "unknown solver 'hen'", "did you mean 'heun'",
                                 "euler", "dpmpp2m", "ipndm"});
}

TEST_F(CliBadInput, UnknownSchedule) {
  json j = gauss_config();
  j["schedule"] = {{"name", "karras"}};
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {cfg.string(), "/schedule/name", "unknown schedule 'karras'", "polynomial",
                                 "logsnr", "time_uniform", "custom"});
}

TEST_F(CliBadInput, StepsZero) {
  const fs::path cfg = config(gauss_config());
  expect_bad_input(sample(cfg, "--set solver.steps=0"), {cfg.string(), "/solver/steps", "must be in [1, 100000], got 0"});
}

TEST_F(CliBadInput, UnreachableNfe) {
  json j = gauss_config();
  j["solver"] = {{"name", "heun"}, {"afs", false}, {"nfe", 5}};
  const fs::path cfg = config(j);
  // heun takes 2 evaluations per step: 4 (2 steps) or 6 (3 steps).
  expect_bad_input(sample(cfg), {cfg.string(), "/solver/nfe", "heun", "5", "nearest reachable", "4 (2 steps)",
                                 "6 (3 steps)"});
}

TEST_F(CliBadInput, SigmaMinNotBelowSigmaMax) {
  const fs::path cfg = config(gauss_config());
  expect_bad_input(sample(cfg, "--set model.sigma_min=100"), {cfg.string(), "/model/sigma_min", "sigma_max"});
}

// A predictor used with a plan other than its own, and a learned last interval on a grid
// that does not end at 0: exit 2, the difference named, nothing written.
TEST_F(CliBadInput, AmedPredictorOnAnotherPlan) {
  const fs::path cfg = repo() / "configs" / "fmnist_flow_amed5.json";
  const std::string small = "--set sampling.num_samples=2 --set sampling.batch_size=2 ";
  expect_bad_input(sample(cfg, small + "--set solver.last_interval=base --set solver.nfe=4"),
                   {"fmnist_flow.amed-dpmpp2m-5.pt", "was distilled for another setting",
                    "last interval \"learned\" (this run: \"base\")"});
  expect_bad_input(sample(cfg, small + "--set solver.afs=true"), {"afs \"mean\" (this run: true)"});
  expect_bad_input(sample(cfg, small + "--set schedule.name=time_uniform"), {"sigma grid", "vp_time"});
  expect_bad_input(sample(cfg, small + "--set schedule.sigma_min=0.002"),
                   {"/solver/last_interval", "ends at sigma 0.002", "use a grid to 0"});
  EXPECT_FALSE(fs::exists(out()));
}

TEST_F(CliBadInput, MissingModelFile) {
  const fs::path model = tmp.path / "missing.pt";
  expect_bad_input(sample(config(gauss_config(model))), {model.string(), "does not exist"});
}

TEST_F(CliBadInput, NotAModel) {
  expect_bad_input(sample(config(gauss_config(data_path("not_a_model.pt")))),
                   {data_path("not_a_model.pt").string(), "not a loadable TorchScript archive"});
}

TEST_F(CliBadInput, NoForwardXT) {
  expect_bad_input(sample(config(gauss_config(data_path("no_forward.pt")))),
                   {data_path("no_forward.pt").string(), "forward", "forward(x, t)"});
}

TEST_F(CliBadInput, WrongOutputShape) {
  expect_bad_input(sample(config(gauss_config(data_path("wrong_shape.pt")))),
                   {data_path("wrong_shape.pt").string(), "returned shape [2, 1, 8, 8]", "[2, 3, 8, 8]"});
}

TEST_F(CliBadInput, WrongOutputDtype) {
  expect_bad_input(sample(config(gauss_config(data_path("wrong_dtype.pt")))),
                   {data_path("wrong_dtype.pt").string(), "dtype", "Long", "floating-point"});
}

TEST_F(CliBadInput, NanOutputNamesTheStepAndSigma) {
  json j = gauss_config(data_path("nan_model.pt"));
  j["solver"] = {{"name", "euler"}, {"steps", 10}};
  j["output"] = {{"png", true}};
  const fs::path cfg = config(j);
  // Euler evaluates at sigma_0..sigma_9; the model returns NaN once sigma < 1.
  const auto process = diffode::Process::from_json(json{{"type", "edm"}}, "test");
  const diffode::Grid grid = diffode::make_grid(diffode::ScheduleSpec{}, 10, {0.002, 80.0, process});
  size_t i = 0;
  while (grid[i] >= 1) ++i;
  std::ostringstream sigma;
  sigma << "sigma " << grid[i];
  const CliResult r = sample(cfg);
  expect_bad_input(r, {data_path("nan_model.pt").string(), "NaN",
                       "step " + std::to_string(i + 1) + " of 10", sigma.str()});
}

// A model that passes the load-time probe and then fails, or breaks the contract at the
// run's batch size, is the user's input: exit 2, one line, nothing half-written.
TEST_F(CliBadInput, AModelThatFailsOrChangesShapeWhileSamplingIsNamedInOneLine) {
  json j = gauss_config(data_path("raises_model.pt"));
  j["solver"] = {{"name", "euler"}, {"steps", 10}};
  CliResult r = sample(config(j));
  expect_bad_input(r, {data_path("raises_model.pt").string(), "forward failed while sampling",
                       "fixture: this model fails for t < 0.1"});
  EXPECT_FALSE(Contains(r.output, "frame #")) << r.output;  // no LibTorch backtrace
  EXPECT_FALSE(Contains(r.output, "Traceback")) << r.output;
  j = gauss_config(data_path("shape_off_probe.pt"));
  j["sampling"] = {{"num_samples", 4}, {"batch_size", 4}};
  r = sample(config(j));
  expect_bad_input(r, {data_path("shape_off_probe.pt").string(),
                       "forward returned shape [4, 1, 8, 8] for x of shape [4, 3, 8, 8] while sampling"});
  EXPECT_FALSE(fs::exists(out() / "parts"));
}

// Inputs that would hang or flood: a FIFO as the model, a 100 kB path, a 1 MB name.
TEST_F(CliBadInput, HugeOrBlockingInputsGetShortMessages) {
  const fs::path fifo = tmp.path / "model.pt";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  CliResult r = sample(config(gauss_config(fifo)));  // it blocked for ever on open()
  expect_bad_input(r, {fifo.string(), "is not a regular file"});
  r = sample(config(gauss_config(tmp.path / std::string(100000, 'p'))));
  expect_bad_input(r, {"File name too long", "characters)"});  // was an internal error
  EXPECT_LT(r.output.size(), 2000u);
  json j = gauss_config();
  j["solver"]["name"] = std::string(1000000, 'x');
  r = sample(config(j));
  expect_bad_input(r, {"unknown solver", "(1000000 characters)"});
  EXPECT_LT(r.output.size(), 2000u);
  json k = gauss_config();  // a 1 MB key: its JSON pointer is cut too
  k["solver"][std::string(1000000, 'k')] = 1;
  r = sample(config(k));
  expect_bad_input(r, {"unknown key", "(1000008 characters)", "(1000000 characters)"});
  EXPECT_LT(r.output.size(), 2000u);
}

TEST_F(CliBadInput, ModelWithoutMetadataSaysWhatToSet) {
  expect_bad_input(sample(config(gauss_config(data_path("no_meta.pt")))),
                   {data_path("no_meta.pt").string(), "model.prediction"});
}

TEST_F(CliBadInput, ModelWithoutMetadataAndOnlySomeOverridesSaysWhatIsStillMissing) {
  expect_bad_input(sample(config(gauss_config(data_path("no_meta.pt"))), "--set model.prediction=x0"),
                   {data_path("no_meta.pt").string(), "model.process"});
}

TEST_F(CliBadInput, BadOverrideValueNamesTheConfigKey) {
  const fs::path cfg = config(gauss_config());
  expect_bad_input(sample(cfg, "--set model.prediction=epsilon"), {cfg.string(), "/model/prediction", "epsilon", "eps"});
}

TEST_F(CliBadInput, BadMetadataJson) {
  expect_bad_input(sample(config(gauss_config(data_path("bad_meta.pt")))),
                   {data_path("bad_meta.pt").string(), "diffode.json", "malformed JSON"});
}

TEST_F(CliBadInput, OutputDirUnderARegularFile) {
  const fs::path file = tmp.path / "file.txt";
  std::ofstream(file) << "a file";
  const fs::path cfg = config(gauss_config());
  const CliResult r = run_cli("sample -c " + q(cfg) + " -o " + q(file / "sub"), tmp.path);
  EXPECT_EQ(r.code, 2) << r.output;
  expect_clean_error(r);
  EXPECT_TRUE(Contains(r.output, (file / "sub").string()));
  EXPECT_EQ(read_file(file), "a file");
  EXPECT_EQ(files_under(tmp.path), (std::vector<std::string>{"cfg.json", "file.txt"}));
}

// ---------------------------------------------------------------- conditioning and quality (eval, stats)

json fmnist_eval_config() {
  return {{"model", {{"path", model_path("fmnist_exact.pt").string()}}},
          {"solver", {{"name", "dpmpp2m"}, {"nfe", 8}}},
          {"sampling", {{"num_samples", 24}, {"batch_size", 12}}},
          {"eval", {{"features", model_path("fmnist_features.pt").string()},
                    {"stats", model_path("fmnist_features.test_stats.json").string()}}}};
}

TEST(CliQuality, SampleWithEvalRecordsTheFrechetDistanceAndEvalAgrees) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "c.json", fmnist_eval_config());
  const CliResult r = run_cli("sample -c " + q(cfg) + " -o " + q(tmp.path / "run"), tmp.path);
  ASSERT_EQ(r.code, 0) << r.output;
  const json m = json::parse(read_file(tmp.path / "run" / "manifest.json"));
  const double fd = m["quality"]["frechet_distance"].get<double>();
  EXPECT_GT(fd, 0.0);
  EXPECT_EQ(m["quality"]["samples"], 24);
  const CliResult e = run_cli("eval " + q(tmp.path / "run") + " --features " + q(model_path("fmnist_features.pt")) +
                              " --stats " + q(model_path("fmnist_features.test_stats.json")));
  ASSERT_EQ(e.code, 0) << e.output;
  char expected[64];
  std::snprintf(expected, sizeof expected, "frechet_distance   %.6f", fd);
  EXPECT_TRUE(Contains(e.output, expected));
  // stats of the run's own samples: the run is at distance 0 from them.
  const CliResult st = run_cli("stats " + q(tmp.path / "run") + " --features " + q(model_path("fmnist_features.pt")) +
                               " -o " + q(tmp.path / "own.json"));
  ASSERT_EQ(st.code, 0) << st.output;
  const CliResult self = run_cli("eval " + q(tmp.path / "run" / "samples.npy") + " --features " +
                                 q(model_path("fmnist_features.pt")) + " --stats " + q(tmp.path / "own.json"));
  ASSERT_EQ(self.code, 0) << self.output;
  const auto at = self.output.find("frechet_distance");
  ASSERT_NE(at, std::string::npos) << self.output;
  EXPECT_LT(std::stod(self.output.substr(at + 16)), 1e-3) << self.output;
}

TEST(CliQuality, ConditionalSamplingRecordsLabels) {
  TempDir tmp;
  const json cfg = {{"model", {{"path", model_path("gmm2d_cond.pt").string()}}},
                    {"sampling", {{"num_samples", 10}, {"labels", "cycle"}, {"guidance", 1.5}}}};
  const CliResult r = run_cli("sample -c " + q(write_json(tmp.path / "c.json", cfg)) + " -o " + q(tmp.path / "run"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json m = json::parse(read_file(tmp.path / "run" / "manifest.json"));
  EXPECT_EQ(m["labels"], json::parse("[0, 1, 2, 3, 4, 5, 6, 7, 0, 1]"));
}

TEST_F(CliBadInput, LabelOutsideTheClasses) {
  json j = gauss_config(model_path("gmm2d_cond.pt"));
  j["sampling"]["num_samples"] = 2;
  j["sampling"]["labels"] = {0, 12};
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {cfg.string(), "/sampling/labels/1", "label 12"});
}

TEST_F(CliBadInput, LabelsForAnUnconditionalModel) {
  const fs::path cfg = config(gauss_config());
  expect_bad_input(sample(cfg, "--set sampling.labels=cycle"), {cfg.string(), "/sampling/labels", "not class-conditional"});
}

TEST_F(CliBadInput, GuidanceWithoutANullClass) {
  const fs::path cfg = config(gauss_config());
  expect_bad_input(sample(cfg, "--set sampling.guidance=2"), {cfg.string(), "/sampling/guidance", "no null class"});
}

TEST_F(CliBadInput, FeatureModelWithoutFeatures) {
  json j = fmnist_eval_config();
  j["eval"]["features"] = model_path("fmnist_exact.pt").string();
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {model_path("fmnist_exact.pt").string(), "no features(x) method"});
}

TEST_F(CliBadInput, StatisticsOfAnotherFeatureSize) {
  const fs::path stats = write_json(tmp.path / "small.json", {{"feature_dim", 2}, {"count", 10}, {"mean", {0, 0}},
                                                              {"cov", {{1, 0}, {0, 1}}}});
  json j = fmnist_eval_config();
  j["eval"]["stats"] = stats.string();
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {stats.string(), "hold 2", "/eval"});
}

TEST_F(CliBadInput, CorruptStatistics) {
  const fs::path stats = tmp.path / "bad.json";
  std::ofstream(stats) << "{\"feature_dim\": 2, \"mean\": [0,";
  json j = fmnist_eval_config();
  j["eval"]["stats"] = stats.string();
  const fs::path cfg = config(j);
  expect_bad_input(sample(cfg), {stats.string(), "malformed JSON"});
  const CliResult e = run_cli("eval " + q(tmp.path) + " --features " + q(model_path("fmnist_features.pt")) +
                              " --stats " + q(stats));
  EXPECT_EQ(e.code, 2) << e.output;
}

}  // namespace

// ---------------------------------------------------------------- AMED: distill, predictors

TEST(CliAmed, DistillThenSampleWithThePredictorAndDescribeIt) {
  TempDir tmp;
  ::setenv("DIFFODE_CACHE", (tmp.path / "cache").c_str(), 1);
  const std::string sets =
      " --set solver.name=amed+ipndm --set solver.nfe=5 --set distill.trajectories=256 --set distill.validation=64"
      " --set distill.iterations=20 --set distill.eval_every=10 --set model.threads=1";
  const fs::path config = repo() / "configs" / "gmm2d.json";
  const CliResult d = run_cli("distill -c " + q(config) + sets + " -o p.pt", tmp.path);
  ASSERT_EQ(d.code, 0) << d.output;
  ASSERT_TRUE(fs::is_regular_file(tmp.path / "p.pt"));
  EXPECT_TRUE(Contains(d.output, "20/20 iterations: loss"));

  const CliResult i = run_cli("info " + q(tmp.path / "p.pt"));
  EXPECT_EQ(i.code, 0) << i.output;
  EXPECT_TRUE(Contains(i.output, "AMED step predictor"));
  EXPECT_TRUE(Contains(i.output, "amed+ipndm, 3 steps, afs true, space sigma, last interval base"));
  EXPECT_TRUE(Contains(i.output, diffode::sha256_file(model_path("gmm2d.pt"))));

  const CliResult s = run_cli("sample -c " + q(config) + sets + " --set solver.predictor=p.pt -o out", tmp.path);
  ASSERT_EQ(s.code, 0) << s.output;
  const json m = json::parse(read_file(tmp.path / "out" / "manifest.json"));
  EXPECT_EQ(m["run"]["nfe"], 5);
  EXPECT_EQ(m["run"]["solver"]["predictor"]["sha256"], diffode::sha256_file(tmp.path / "p.pt"));

  // the same predictor at another NFE (other steps) or with another solver: refused, exit 2
  const CliResult wrong_steps = run_cli("sample -c " + q(config) + sets + " --set solver.nfe=7 --set solver.predictor=p.pt -o o2", tmp.path);
  EXPECT_EQ(wrong_steps.code, 2) << wrong_steps.output;
  EXPECT_TRUE(Contains(wrong_steps.output, "steps 3 (this run: 4)"));
  expect_clean_error(wrong_steps);
  const CliResult wrong_solver = run_cli("sample -c " + q(config) + sets + " --set solver.name=amed --set solver.predictor=p.pt -o o3", tmp.path);
  EXPECT_EQ(wrong_solver.code, 2) << wrong_solver.output;
  EXPECT_TRUE(Contains(wrong_solver.output, "solver \"amed+ipndm\" (this run: \"amed\")"));
  const CliResult wrong_model = run_cli("sample -c " + q(repo() / "configs" / "gauss.json") +
                                            " --set solver.name=amed+ipndm --set solver.steps=3 --set solver.predictor=p.pt -o o4",
                                        tmp.path);
  EXPECT_EQ(wrong_model.code, 2) << wrong_model.output;
  EXPECT_TRUE(Contains(wrong_model.output, "model sha256"));
  for (const char* dir : {"o2", "o3", "o4"}) EXPECT_FALSE(fs::exists(tmp.path / dir)) << dir;
}

// A predictor whose metadata has fields of the wrong type is described as written.
TEST(CliAmed, InfoDescribesAPredictorWithOddMetadata) {
  TempDir tmp;
  diffode::AmedPredictor p = diffode::AmedPredictor::create(4, 0.05, 0.05, 1);
  p.set_metadata({{"kind", "amed_predictor"}, {"solver", 5}, {"steps", "many"}, {"afs", {1, 2}}, {"sigmas", "x"}});
  diffode::write_file_atomic(tmp.path / "odd.pt", p.archive_bytes());
  const CliResult r = run_cli("info " + q(tmp.path / "odd.pt"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "solver       5, many steps, afs [1,2], space sigma, last interval base")) << r.output;
  EXPECT_TRUE(Contains(r.output, "model        ? (sha256 ?)")) << r.output;
}

TEST(CliAmed, BadInputsAreNamed) {
  TempDir tmp;
  const fs::path config = repo() / "configs" / "gmm2d.json";
  const std::string c = " -c " + q(config);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sample" + c + " --set solver.name=amed -o out", "/solver/predictor: solver 'amed' needs a step predictor file"},
      {"sample" + c + " --set solver.name=amed --set solver.predictor=nope.pt -o out", "nope.pt: file does not exist"},
      {"distill" + c + " -o p.pt", "solver 'dpmpp2m' uses no predictor"},
      {"distill" + c + " --set solver.name=amed", "no predictor file to write"},
      {"sample" + c + " --set solver.name=amed --set solver.predictor=" + q(model_path("gmm2d.pt")) + " -o out",
       "not a diffode AMED predictor"},
  };
  for (const auto& [args, message] : cases) {
    const CliResult r = run_cli(args, tmp.path);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, message)) << args;
    expect_clean_error(r);
  }
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
  EXPECT_FALSE(fs::exists(tmp.path / "p.pt"));
}

TEST(CliAmed, AKilledDistillationLeavesAUsablePredictorAndARerunContinues) {
  TempDir tmp;
  ::setenv("DIFFODE_CACHE", (tmp.path / "cache").c_str(), 1);
  const std::string cmd = "distill -c " + q(repo() / "configs" / "gmm2d.json") +
                          " --set solver.name=amed --set solver.nfe=5 --set distill.trajectories=256"
                          " --set distill.validation=64 --set distill.batch_size=16 --set distill.iterations=1500"
                          " --set distill.eval_every=5 --set model.threads=1 -o p.pt";
  // SIGKILL once the first predictor file is there (however loaded the machine): no handler
  // runs, so only what was committed by rename is there.
  const CliResult killed = diffode::test::run_shell(
      "('" + std::string(DIFFODE_CLI) + "' " + cmd + " & pid=$!; for i in $(seq 1200); do [ -f p.pt ] && break; "
      "sleep 0.1; done; sleep 0.5; kill -9 $pid; wait $pid)",
      tmp.path);
  EXPECT_NE(killed.code, 0) << killed.output;
  ASSERT_TRUE(fs::exists(tmp.path / "p.pt")) << killed.output;
  const CliResult info = run_cli("info " + q(tmp.path / "p.pt"));
  ASSERT_EQ(info.code, 0) << info.output;  // a complete, loadable predictor
  const json before = json::parse(info.output.substr(info.output.find("training     ") + 13));
  EXPECT_LT(before["iterations_run"].get<int>(), 1500) << "the run finished within 2 s: nothing was killed";

  // The rerun continues from what the killed run committed: its iterations and best loss.
  const auto t0 = std::chrono::steady_clock::now();
  const CliResult rerun = run_cli(cmd, tmp.path);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(rerun.code, 0) << rerun.output;
  const std::string from = "from iteration " + before["iterations_run"].dump() + " (best validation loss ";
  const size_t at = rerun.output.find(from);
  ASSERT_NE(at, std::string::npos) << "expected '" << from << "' in:\n" << rerun.output;
  EXPECT_TRUE(Contains(rerun.output.substr(0, at), "continuing"));
  const double logged = std::stod(rerun.output.substr(at + from.size()));  // printed to 4 digits
  const double best_before = before["best_validation_loss"].get<double>();
  EXPECT_NEAR(logged, best_before, 1e-3 * best_before) << rerun.output;
  const CliResult after = run_cli("info " + q(tmp.path / "p.pt"));
  const json done = json::parse(after.output.substr(after.output.find("training     ") + 13));
  EXPECT_EQ(done["iterations_run"], 1500);
  EXPECT_EQ(done["midpoint_validation_loss"], before["midpoint_validation_loss"]);
  // Its seconds are the killed run's plus at most the rerun's wall time.
  const double added = done["seconds"].get<double>() - before["seconds"].get<double>();
  EXPECT_GT(added, 0.0);
  EXPECT_LE(added, wall);

  // A finished distillation run again trains nothing and leaves the file as it is.
  const std::string bytes = read_file(tmp.path / "p.pt");
  const CliResult again = run_cli(cmd, tmp.path);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(Contains(again.output, "from iteration 1500 ")) << again.output;
  EXPECT_TRUE(read_file(tmp.path / "p.pt") == bytes) << "the predictor file was rewritten";
}

// ---------------------------------------------------------------- outputs and records (issue 25)

namespace {

// A small fmnist run folder (8 samples) for eval and stats.
fs::path small_fmnist_run(const TempDir& tmp) {
  const fs::path run = tmp.path / "run";
  const CliResult r = run_cli("sample -c " + q(repo() / "configs" / "fmnist_exact.json") +
                              " --set sampling.num_samples=8 --set sampling.batch_size=8 --set solver.nfe=4 -o " + q(run));
  EXPECT_EQ(r.code, 0) << r.output;
  return run;
}

}  // namespace

// `stats -o` onto one of its inputs (the feature model, the samples) is refused, whatever
// the path says; so is an existing file that is not statistics.
TEST(CliOutputs, StatsRefusesToWriteOverItsInputsOrAUsersFile) {
  TempDir tmp;
  const fs::path run = small_fmnist_run(tmp);
  const fs::path features = tmp.path / "f.pt";
  fs::copy_file(model_path("fmnist_features.pt"), features);
  const std::string model_bytes = read_file(features), npy_bytes = read_file(run / "samples.npy");
  const std::vector<std::pair<std::string, fs::path>> cases = {
      {q(run / "samples.npy"), features},
      {q(run / "samples.npy"), tmp.path / "." / "f.pt"},
      {q(run / "samples.npy"), run / "samples.npy"},
      {q(run), run / "samples.npy"},
  };
  for (const auto& [input, out] : cases) {
    const CliResult r = run_cli("stats " + input + " --features " + q(features) + " -o " + q(out));
    EXPECT_EQ(r.code, 2) << out << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, "an input of this command")) << out;
    expect_clean_error(r);
  }
  EXPECT_TRUE(read_file(features) == model_bytes) << "the feature model was written over";
  EXPECT_TRUE(read_file(run / "samples.npy") == npy_bytes) << "the samples were written over";
  const fs::path notes = tmp.path / "notes.json";
  std::ofstream(notes) << "{\"mine\": true}\n";
  const CliResult r = run_cli("stats " + q(run) + " --features " + q(features) + " -o " + q(notes));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "is not a statistics file diffode wrote"));
  EXPECT_EQ(read_file(notes), "{\"mine\": true}\n");
  // Its own statistics are replaced as before.
  ASSERT_EQ(run_cli("stats " + q(run) + " --features " + q(features) + " -o " + q(tmp.path / "s.json")).code, 0);
  EXPECT_EQ(run_cli("stats " + q(run) + " --features " + q(features) + " -o " + q(tmp.path / "s.json")).code, 0);
}

// A run folder's manifest read by eval is input: a field of the wrong type is named (exit 2).
TEST(CliOutputs, EvalNamesAManifestFieldOfTheWrongType) {
  TempDir tmp;
  const fs::path run = small_fmnist_run(tmp);
  const json good = json::parse(read_file(run / "manifest.json"));
  const std::vector<std::pair<std::string, json>> cases = {
      {"/labels/0", json::array({"a", "b", "c", "d", "e", "f", "g", "h"})},
      {"/labels", "all"},
      {"/run/model/metadata/num_classes", "ten"},
  };
  for (const auto& [pointer, value] : cases) {
    json m = good;
    if (pointer == "/run/model/metadata/num_classes")
      m["run"]["model"]["metadata"]["num_classes"] = value;
    else
      m["labels"] = value;
    write_json(run / "manifest.json", m);
    const CliResult r = run_cli("eval " + q(run) + " --features " + q(model_path("fmnist_features.pt")) + " --stats " +
                                q(model_path("fmnist_features.test_stats.json")));
    EXPECT_EQ(r.code, 2) << pointer << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, (run / "manifest.json").string() + ": " + pointer)) << pointer;
    expect_clean_error(r);
  }
}

// ---------------------------------------------------------------- hardening, round 2 (issue 25)

// Every input file is regular and bounded: a FIFO blocked for ever, /dev/zero was read until
// memory ran out, a directory was "malformed JSON".
TEST_F(CliBadInput, EveryInputFileIsRegular) {
  const fs::path fifo = tmp.path / "fifo.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string blocking = "timeout 60 '" + std::string(DIFFODE_CLI) + "' ";
  auto cli = [&](const std::string& args) { return run_shell(blocking + args, tmp.path); };
  expect_bad_input(cli("sample -c " + q(fifo) + " -o " + q(out())), {"config " + fifo.string(), "is not a regular file"});
  expect_bad_input(cli("sample -c /dev/zero -o " + q(out())), {"config /dev/zero", "is not a regular file"});
  fs::create_directories(tmp.path / "dir.json");
  expect_bad_input(cli("sample -c " + q(tmp.path / "dir.json") + " -o " + q(out())), {"dir.json: is a directory"});
  json tuned = gauss_config();
  tuned["schedule"] = {{"name", "tuned"}, {"path", fifo.string()}};
  expect_bad_input(cli("sample -c " + q(config(tuned)) + " -o " + q(out())),
                   {"/schedule/path", "tuned grid " + fifo.string(), "is not a regular file"});
  const fs::path samples = tmp.path / "samples.npy";
  {
    const std::vector<float> values(4 * 3 * 8 * 8, 0.5f);
    diffode::write_npy(samples, {4, 3, 8, 8}, values.data());
  }
  const CliResult stats = cli("eval " + q(samples) + " --features " + q(model_path("fmnist_features.pt")) +
                              " --stats " + q(fifo));
  EXPECT_EQ(stats.code, 2) << stats.output;
  EXPECT_TRUE(Contains(stats.output, "statistics " + fifo.string() + ": is not a regular file")) << stats.output;
}

// A grid point no float state can hold is named at the schedule (its NaN was blamed on the model).
TEST_F(CliBadInput, AGridPointBeyondFloatRangeIsTheSchedules) {
  json j = gauss_config();
  j["schedule"] = {{"name", "custom"}, {"sigmas", {1e308, 1.0, 0.0}}};
  j["solver"]["steps"] = 2;
  expect_bad_input(sample(config(j)), {"/schedule: grid point 0 (sigma 1e+308) is beyond 1e+30"});
}

// Text that is not UTF-8 (a path, a --set value) cannot be recorded in JSON: named, exit 2
// (it failed as nlohmann's type_error 316 when the manifest was written).
TEST_F(CliBadInput, NonUtf8TextIsNamed) {
  const CliResult r = sample(config(gauss_config()), q("--set=model.path=" + tmp.path.string() + "/\xff.pt"));
  expect_bad_input(r, {"/model/path: is not UTF-8 text"});
  json j = gauss_config();
  j["compare"] = {{"solvers", {{{"name", "euler"}, {"label", "ok"}}}}, {"nfe", {4}}};
  const CliResult c = run_cli("compare -c " + q(config(j)) + " " + q("--set=compare.solvers=[{\"name\": \"euler\"}]") +
                                  " " + q("--set=output.dir=\xfe"),
                              tmp.path);
  EXPECT_EQ(c.code, 2) << c.output;
  EXPECT_TRUE(Contains(c.output, "/output/dir: is not UTF-8 text")) << c.output;
}

// A path the file system refuses is the user's (exit 2, one line), not an internal error.
TEST(CliHardening, AFileSystemErrorIsBadInput) {
  TempDir tmp;
  const fs::path gone = tmp.path / "gone";
  fs::create_directories(gone);
  const CliResult r = run_shell("cd " + q(gone) + " && rmdir " + q(gone) + " && '" + std::string(DIFFODE_CLI) +
                                    "' sample -c " + q(repo() / "configs/gauss.json") + " -o out",
                                tmp.path);
  EXPECT_EQ(r.code, 2) << r.output;
  expect_clean_error(r);
  EXPECT_TRUE(Contains(r.output, "error: filesystem error")) << r.output;
}

// Results printed to a full stdout are lost: exit 1 and a word, not 0.
TEST(CliHardening, AFullStdoutIsAFailure) {
  const CliResult r = run_shell("{ '" + std::string(DIFFODE_CLI) + "' solvers > /dev/full; }", repo());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "cannot write to standard output")) << r.output;
  EXPECT_EQ(run_shell("'" + std::string(DIFFODE_CLI) + "' solvers > /dev/null", repo()).code, 0);
}

// An unknown sweep key lists some keys, not all ~70 on one 1.5 KB line.
TEST(CliHardening, AnUnknownSweepKeyGetsAShortList) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "sweep.json",
                                  {{"model", {{"path", model_path("gauss.pt").string()}}},
                                   {"sweep", {{"solver.nfee", {1, 2}}}}});
  const CliResult r = run_cli("sample -c " + q(cfg) + " -o " + q(tmp.path / "out"), tmp.path);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "(did you mean 'solver.nfe'?)")) << r.output;
  EXPECT_TRUE(Contains(r.output, " more)")) << r.output;
  EXPECT_LT(r.output.size(), 1000u) << r.output;
}

// The samples of stats and eval are regular files too: a FIFO blocked for ever.
TEST_F(CliBadInput, SamplesThatAreNotARegularFileAreRefused) {
  const fs::path fifo = tmp.path / "samples.npy";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const CliResult r = run_shell("timeout 60 '" + std::string(DIFFODE_CLI) + "' stats " + q(fifo) + " --features " +
                                    q(model_path("fmnist_features.pt")) + " -o " + q(tmp.path / "s.json"),
                                tmp.path);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "array " + fifo.string() + ": is not a regular file")) << r.output;
  EXPECT_FALSE(fs::exists(tmp.path / "s.json"));
}

// An output file that cannot be written is named at once (exit 2), not after the teacher,
// the training or the features have run (tune -o file/x failed after its teacher; distill -o
// and stats -o gave exit 1 with --resume advice after the work).
TEST(CliHardening, AnUnwritableOutputFileIsNamedBeforeTheWork) {
  TempDir tmp;
  const fs::path file = tmp.path / "file.txt";
  std::ofstream(file) << "a file";
  const std::string under_file = q(file / "x.json");
  const std::vector<std::string> commands = {
      "tune -c " + q(repo() / "configs/fmnist_flow_plans.json") + " -o " + under_file,
      "distill -c " + q(repo() / "configs/fmnist_flow_amed5.json") + " -o " + q(tmp.path / "none" / "p.pt"),
      "stats " + q(repo() / "models/gauss.pt") + " --features " + q(model_path("fmnist_features.pt")) + " -o " +
          under_file,
  };
  for (const auto& c : commands) {
    const CliResult r = run_cli(c, tmp.path);
    EXPECT_EQ(r.code, 2) << c << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, "error: cannot write ")) << r.output;
    EXPECT_FALSE(Contains(r.output, "--resume")) << r.output;
    EXPECT_FALSE(Contains(r.output, "teacher")) << r.output;  // nothing ran
  }
}
