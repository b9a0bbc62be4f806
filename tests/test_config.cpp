// The run config (DESIGN.md §7): defaults, --set overrides, path resolution, and the
// messages of every kind of bad input (file, JSON pointer, what is wrong, a suggestion).
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "diffode/runs/config.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/json_file.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"
#include "test_util.hpp"

namespace {

using diffode::Config;
using diffode::InputError;
using diffode::load_config;
using diffode::parse_config;
using diffode::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not found in:\n  " << text;
}

fs::path write_text(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

// The message of the InputError `f` throws ("" and a failure if it throws none).
std::string input_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected an InputError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected an InputError, but nothing was thrown";
  return "";
}

// Runs load_config on `config` written to <tmp>/cfg.json and returns the error message.
struct ConfigErrors : ::testing::Test {
  TempDir tmp;
  fs::path file() const { return tmp.path / "cfg.json"; }
  std::string error_for(const json& config, const std::vector<std::string>& sets = {}) {
    write_text(file(), config.dump(2));
    return input_error([&] { load_config(file(), sets); });
  }
  static json minimal() { return {{"model", {{"path", "m.pt"}}}}; }
  static json with(const std::string& section, const json& body) {
    json j = minimal();
    j[section] = body;
    return j;
  }
};

// ---------------------------------------------------------------- defaults

TEST(ConfigDefaults, MinimalConfigGetsEveryDefault) {
  TempDir tmp;
  const fs::path file = write_text(tmp.path / "cfg.json", R"({"model": {"path": "m.pt"}})");
  const Config c = load_config(file);

  EXPECT_EQ(c.source, file.string());
  EXPECT_EQ(c.model.path, tmp.path / "m.pt");
  EXPECT_EQ(c.model.device, "cpu");
  EXPECT_EQ(c.model.threads, 0);
  EXPECT_EQ(c.model.dtype, "float32");
  EXPECT_TRUE(c.model.overrides.is_object());
  EXPECT_TRUE(c.model.overrides.empty());

  EXPECT_EQ(c.solver.info().name, "heun");
  EXPECT_FALSE(c.solver.steps.has_value());  // the step planner's default (kDefaultSteps)
  EXPECT_FALSE(c.solver.nfe.has_value());
  EXPECT_FALSE(c.solver.afs.has_value());
  EXPECT_EQ(c.solver.precision, "float64");
  EXPECT_EQ(c.solver.max_order, 0);

  EXPECT_EQ(c.schedule.schedule->name, "polynomial");
  EXPECT_FALSE(c.schedule.rho.has_value());
  EXPECT_TRUE(c.schedule.sigmas.empty());
  EXPECT_FALSE(c.schedule.denoise_to_zero);

  EXPECT_EQ(c.sampling.num_samples, 64);
  EXPECT_EQ(c.sampling.batch_size, 64);
  EXPECT_EQ(c.sampling.seed, 0);

  EXPECT_FALSE(c.output.dir.has_value());
  EXPECT_EQ(c.output.grid_cols, 8);
  EXPECT_EQ(c.output.grid_max, 256);
  EXPECT_FALSE(c.output.png);
  EXPECT_TRUE(c.output.npy);
}

TEST(ConfigDefaults, ResolvedJsonHoldsTheFilledDefaults) {
  TempDir tmp;
  const fs::path file = write_text(tmp.path / "cfg.json", R"({"model": {"path": "m.pt"}, "solver": {"nfe": 10}})");
  const Config c = load_config(file);
  const json j = to_json(c);
  EXPECT_EQ(j["model"]["path"], (tmp.path / "m.pt").string());
  EXPECT_EQ(j["model"]["device"], "cpu");
  EXPECT_EQ(j["solver"]["name"], "heun");
  EXPECT_EQ(j["solver"]["nfe"], 10);
  EXPECT_FALSE(j["solver"].contains("steps"));
  EXPECT_EQ(j["schedule"]["name"], "polynomial");
  EXPECT_EQ(j["schedule"]["denoise_to_zero"], false);
  EXPECT_EQ(j["sampling"]["num_samples"], 64);
  EXPECT_EQ(j["sampling"]["seed"], 0);
  EXPECT_EQ(j["output"]["grid_cols"], 8);
  EXPECT_EQ(j["output"]["npy"], true);
  EXPECT_FALSE(j["output"].contains("dir"));
}

// The one table: every key has a one-line doc, and a key with a default writes it into the
// run identity of a config that does not give it.
TEST(ConfigKeys, EveryKeyHasADocAndItsDefaultIsTheIdentitys) {
  TempDir tmp;
  const Config c = load_config(write_text(tmp.path / "cfg.json", R"({"model": {"path": "m.pt"}})"));
  const json j = to_json(c);
  size_t keys = 0;
  for (const diffode::KeyInfo& section : diffode::config_keys()) {
    EXPECT_FALSE(section.doc.empty()) << section.key;
    for (const diffode::KeyInfo& k : section.children) {
      ++keys;
      EXPECT_FALSE(k.doc.empty()) << section.key << "." << k.key;
      // (a schedule parameter is written only for a schedule that takes it)
      if (!k.def.is_null() && j.contains(section.key) && j[section.key].contains(k.key)) {
        EXPECT_EQ(j[section.key][k.key], k.def) << section.key << "." << k.key;
      }
    }
  }
  EXPECT_GT(keys, 40u);
  EXPECT_EQ(j["solver"]["name"], "heun");
  EXPECT_EQ(j["distill"]["teacher"], "heun");
  EXPECT_FALSE(j.contains("compare"));
}

// A config read from its own identity is the same config (what merge does with a shard record).
TEST(ConfigKeys, ToJsonReadsBackToTheSameIdentity) {
  TempDir tmp;
  const Config c = load_config(write_text(tmp.path / "cfg.json", R"({"model": {"path": "m.pt", "sigma_max": 80},
      "solver": {"name": "ipndm", "nfe": 5, "afs": false, "max_order": 3},
      "schedule": {"name": "custom", "sigmas": [80, 1, 0]}, "sampling": {"labels": [1, 2], "guidance": 2},
      "compare": {"solvers": [{"name": "euler", "label": "e"}, {"name": "amed", "predictor": "p-{nfe}.pt"}],
                  "nfe": [3, 5]}})"));
  const json j = to_json(c);
  EXPECT_EQ(to_json(parse_config(j, "again", "/")), j);
  EXPECT_EQ(j["compare"]["solvers"][0]["label"], "e");
  EXPECT_FALSE(j["compare"]["solvers"][1].contains("label"));
  EXPECT_EQ(j["compare"]["solvers"][1]["predictor"], (tmp.path / "p-{nfe}.pt").string());
  EXPECT_EQ(j["sampling"]["labels"], json::parse("[1, 2]"));
  EXPECT_EQ(j["model"]["sigma_max"], 80);
}

TEST(ConfigDefaults, VpTimeBetasAreReadDefaultedAndWrittenOnlyForIt) {
  const Config given = parse_config(
      json::parse(R"({"model": {"path": "/m.pt"}, "schedule": {"name": "vp_time", "beta_min": 0.5, "beta_max": 12}})"),
      "inline", "/");
  EXPECT_EQ(given.schedule.schedule->name, "vp_time");
  EXPECT_EQ(given.schedule.beta_min, 0.5);
  EXPECT_EQ(given.schedule.beta_max, 12.0);
  const json written = to_json(given);
  EXPECT_EQ(written["schedule"]["beta_min"], 0.5);
  EXPECT_EQ(written["schedule"]["beta_max"], 12.0);
  // The written config reads back (the run identity a merge parses).
  EXPECT_EQ(to_json(parse_config(written, "inline", "/")), written);

  const Config defaults =
      parse_config(json::parse(R"({"model": {"path": "/m.pt"}, "schedule": {"name": "vp_time"}})"), "inline", "/");
  EXPECT_EQ(defaults.schedule.beta_min, 0.1);
  EXPECT_EQ(defaults.schedule.beta_max, 20.0);
  EXPECT_EQ(to_json(defaults)["schedule"]["beta_min"], 0.1);
  EXPECT_EQ(to_json(defaults)["schedule"]["beta_max"], 20.0);
  // --set reaches them.
  EXPECT_EQ(parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/",
                         {"schedule.name=vp_time", "schedule.beta_max=8"})
                .schedule.beta_max,
            8.0);

  // Another schedule's identity has no beta (nor a refused default when read back).
  const json poly = to_json(parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/"));
  EXPECT_FALSE(poly["schedule"].contains("beta_min"));
  EXPECT_FALSE(poly["schedule"].contains("beta_max"));
  EXPECT_EQ(to_json(parse_config(poly, "inline", "/")), poly);
}

TEST(ConfigDefaults, NfeGivenLeavesStepsUnset) {
  TempDir tmp;
  const fs::path file = write_text(tmp.path / "cfg.json", R"({"model": {"path": "m.pt"}, "solver": {"nfe": 7}})");
  const Config c = load_config(file);
  EXPECT_FALSE(c.solver.steps.has_value());
  ASSERT_TRUE(c.solver.nfe.has_value());
  EXPECT_EQ(*c.solver.nfe, 7);
}

TEST(ConfigDefaults, ExplicitValuesAreKept) {
  TempDir tmp;
  const fs::path file = write_text(tmp.path / "cfg.json", R"({
    "model":    {"path": "/abs/m.pt", "threads": 3, "dtype": "float64",
                 "prediction": "eps", "sample_shape": [1, 4, 4], "process": {"type": "vp"}},
    "solver":   {"name": "ipndm", "steps": 7, "afs": true, "precision": "float32", "max_order": 3},
    "schedule": {"name": "time_uniform", "rho": 2.5, "denoise_to_zero": true},
    "sampling": {"num_samples": 5, "batch_size": 2, "seed": 42},
    "output":   {"grid_cols": 3, "grid_max": 9, "png": true, "npy": false}
  })");
  const Config c = load_config(file);
  EXPECT_EQ(c.model.path, fs::path("/abs/m.pt"));
  EXPECT_EQ(c.model.threads, 3);
  EXPECT_EQ(c.model.dtype, "float64");
  EXPECT_EQ(c.model.overrides, json::parse(R"({"prediction": "eps", "sample_shape": [1, 4, 4],
                                               "process": {"type": "vp"}})"));
  EXPECT_EQ(c.solver.info().name, "ipndm");
  EXPECT_EQ(c.solver.steps, 7);
  EXPECT_EQ(c.solver.afs, diffode::Afs::plain);
  EXPECT_EQ(c.solver.precision, "float32");
  EXPECT_EQ(c.solver.max_order, 3);
  EXPECT_EQ(c.schedule.schedule->name, "time_uniform");
  EXPECT_EQ(c.schedule.rho, 2.5);
  EXPECT_TRUE(c.schedule.denoise_to_zero);
  EXPECT_EQ(c.sampling.num_samples, 5);
  EXPECT_EQ(c.sampling.batch_size, 2);
  EXPECT_EQ(c.sampling.seed, 42);
  EXPECT_EQ(c.output.grid_cols, 3);
  EXPECT_EQ(c.output.grid_max, 9);
  EXPECT_TRUE(c.output.png);
  EXPECT_FALSE(c.output.npy);
}

TEST(ConfigDefaults, CustomScheduleFixesTheSteps) {
  TempDir tmp;
  const fs::path file = write_text(
      tmp.path / "cfg.json", R"({"model": {"path": "m.pt"}, "schedule": {"name": "custom", "sigmas": [80, 10, 1, 0.002]}})");
  const Config c = load_config(file);
  EXPECT_EQ(c.schedule.sigmas, (std::vector<double>{80, 10, 1, 0.002}));
  EXPECT_FALSE(c.solver.steps.has_value());  // the planner takes them from the schedule
  EXPECT_EQ(fixed_steps(c.schedule), 3);
}

TEST(ConfigDefaults, EveryShippedConfigLoads) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(diffode::test::repo() / "configs")) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    const Config c = load_config(entry.path());
    EXPECT_TRUE(c.model.path.is_absolute());
    EXPECT_TRUE(fs::exists(c.model.path)) << c.model.path;
    ++n;
  }
  EXPECT_GE(n, 3);
}

// ---------------------------------------------------------------- paths

TEST(ConfigPaths, RelativePathsInTheFileResolveAgainstItsFolder) {
  TempDir tmp;
  const fs::path file = write_text(tmp.path / "a" / "b" / "cfg.json",
                                   R"({"model": {"path": "../models/m.pt"}, "output": {"dir": "runs/x"}})");
  const Config c = load_config(file);
  EXPECT_EQ(c.model.path, tmp.path / "a" / "models" / "m.pt");
  ASSERT_TRUE(c.output.dir.has_value());
  EXPECT_EQ(*c.output.dir, tmp.path / "a" / "b" / "runs" / "x");
  EXPECT_EQ(to_json(c)["model"]["path"], (tmp.path / "a" / "models" / "m.pt").string());
}

TEST(ConfigPaths, RelativeFileNameResolvesAgainstItsFolderNotTheWorkingDirectory) {
  TempDir tmp;
  write_text(tmp.path / "sub" / "cfg.json", R"({"model": {"path": "m.pt"}})");
  const fs::path old = fs::current_path();
  fs::current_path(tmp.path);
  Config c;
  try {
    c = load_config("sub/cfg.json");
  } catch (...) {
    fs::current_path(old);
    throw;
  }
  fs::current_path(old);
  EXPECT_EQ(c.model.path, tmp.path / "sub" / "m.pt");
}

TEST(ConfigPaths, AbsolutePathsAreKept) {
  TempDir tmp;
  const fs::path file = write_text(tmp.path / "cfg.json", R"({"model": {"path": "/x/y/m.pt"}, "output": {"dir": "/out"}})");
  const Config c = load_config(file);
  EXPECT_EQ(c.model.path, fs::path("/x/y/m.pt"));
  EXPECT_EQ(*c.output.dir, fs::path("/out"));
}

TEST(ConfigPaths, SetPathsResolveAgainstTheWorkingDirectory) {
  TempDir tmp;
  const fs::path file = write_text(tmp.path / "cfg" / "cfg.json", R"({"model": {"path": "m.pt"}})");
  const Config c = load_config(file, {"model.path=models/other.pt", "output.dir=out/run"});
  EXPECT_EQ(c.model.path, fs::current_path() / "models" / "other.pt");
  ASSERT_TRUE(c.output.dir.has_value());
  EXPECT_EQ(*c.output.dir, fs::current_path() / "out" / "run");
}

TEST(ConfigPaths, ParseConfigResolvesAgainstTheGivenBaseDir) {
  const Config c = parse_config(json::parse(R"({"model": {"path": "m.pt"}})"), "inline", "/base/dir");
  EXPECT_EQ(c.model.path, fs::path("/base/dir/m.pt"));
  EXPECT_EQ(c.source, "inline");
}

// ---------------------------------------------------------------- --set

TEST(ConfigSet, ValuesAreParsedAsJson) {
  const Config c = parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/",
                                {"solver.steps=5", "solver.afs=true", "schedule.rho=3.5", "sampling.seed=12",
                                 "model.sample_shape=[3, 8, 8]"});
  EXPECT_EQ(c.solver.steps, 5);
  EXPECT_EQ(c.solver.afs, diffode::Afs::plain);
  EXPECT_EQ(c.schedule.rho, 3.5);
  EXPECT_EQ(c.sampling.seed, 12);
  EXPECT_EQ(c.model.overrides["sample_shape"], json::parse("[3, 8, 8]"));
  EXPECT_TRUE(to_json(c)["solver"]["steps"].is_number_integer());
  EXPECT_TRUE(to_json(c)["solver"]["afs"].is_boolean());
}

TEST(ConfigSet, NonJsonValuesAreStrings) {
  const Config c = parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/",
                                {"solver.name=euler", "schedule.name=logsnr", "model.prediction=x0"});
  EXPECT_EQ(c.solver.info().name, "euler");
  EXPECT_EQ(c.schedule.schedule->name, "logsnr");
  EXPECT_EQ(c.model.overrides["prediction"], "x0");
}

TEST(ConfigSet, QuotedJsonStringsWork) {
  const Config c =
      parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/", {R"(solver.name="dpm2")"});
  EXPECT_EQ(c.solver.info().name, "dpm2");
}

TEST(ConfigSet, OverridesValuesFromTheFile) {
  TempDir tmp;
  const fs::path file =
      write_text(tmp.path / "cfg.json", R"({"model": {"path": "m.pt"}, "solver": {"name": "heun", "steps": 10}})");
  const Config c = load_config(file, {"solver.name=euler", "solver.steps=3"});
  EXPECT_EQ(c.solver.info().name, "euler");
  EXPECT_EQ(c.solver.steps, 3);
  EXPECT_EQ(to_json(c)["solver"]["name"], "euler");
}

TEST(ConfigSet, LaterSetsWin) {
  const Config c = parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/",
                                {"solver.steps=5", "solver.steps=9"});
  EXPECT_EQ(c.solver.steps, 9);
}

TEST(ConfigSet, NestedKeysCreateObjects) {
  // Neither "solver" nor model.process exist in the file.
  const Config c = parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/",
                                {"solver.name=euler", "model.process.type=vp", "model.process.beta_max=10"});
  EXPECT_EQ(c.solver.info().name, "euler");
  EXPECT_EQ(c.model.overrides["process"], json::parse(R"({"type": "vp", "beta_max": 10})"));
}

TEST(ConfigSet, ValueMayContainEqualsSigns) {
  const Config c =
      parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/", {"model.description=a=b"});
  EXPECT_EQ(c.model.overrides["description"], "a=b");
}

TEST(ConfigSet, SettingThroughANonObjectIsAnError) {
  const std::string msg = input_error([] {
    parse_config(json::parse(R"({"model": {"path": "/m.pt"}, "solver": {"name": "heun"}})"), "inline", "/",
                 {"solver.name.x=1"});
  });
  EXPECT_TRUE(Contains(msg, "solver.name.x=1"));
  EXPECT_TRUE(Contains(msg, "/solver/name"));
  EXPECT_TRUE(Contains(msg, "not an object"));
}

TEST(ConfigSet, SettingThroughAKeyThatIsNotAnObjectByDefaultIsAnError) {
  // solver.name is not in the file: the set makes it an object, which is the wrong type.
  const std::string msg = input_error([] {
    parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/", {"solver.name.x=1"});
  });
  EXPECT_TRUE(Contains(msg, "/solver/name"));
  EXPECT_TRUE(Contains(msg, "expected a string"));
}

TEST(ConfigSet, SettingThroughAFileValueThatIsNotAnObjectIsAnError) {
  const std::string msg = input_error([] {
    parse_config(json::parse(R"({"model": {"path": "/m.pt"}, "sampling": {"seed": 3}})"), "inline", "/",
                 {"sampling.seed.x=1"});
  });
  EXPECT_TRUE(Contains(msg, "/sampling/seed"));
  EXPECT_TRUE(Contains(msg, "not an object"));
}

TEST(ConfigSet, MissingEqualsSignIsAnError) {
  const std::string msg = input_error(
      [] { parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/", {"solver.name"}); });
  EXPECT_TRUE(Contains(msg, "solver.name"));
  EXPECT_TRUE(Contains(msg, "KEY=VALUE"));
}

TEST(ConfigSet, EmptyKeyPartIsAnError) {
  const std::string msg = input_error(
      [] { parse_config(json::parse(R"({"model": {"path": "/m.pt"}})"), "inline", "/", {"solver..name=heun"}); });
  EXPECT_TRUE(Contains(msg, "solver..name"));
}

TEST_F(ConfigErrors, SetOfAnUnknownKeyNamesTheFileAndSuggests) {
  const std::string msg = error_for(minimal(), {"solver.stpes=4"});
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/solver/stpes"));
  EXPECT_TRUE(Contains(msg, "did you mean 'steps'"));
}

TEST_F(ConfigErrors, SetOfAWrongTypeIsAnError) {
  const std::string msg = error_for(minimal(), {"solver.steps=ten"});
  EXPECT_TRUE(Contains(msg, "/solver/steps"));
  EXPECT_TRUE(Contains(msg, "expected an integer"));
  EXPECT_TRUE(Contains(msg, "\"ten\""));
}

// ---------------------------------------------------------------- errors

TEST_F(ConfigErrors, MissingFileIsNamed) {
  const fs::path missing = tmp.path / "nope.json";
  const std::string msg = input_error([&] { load_config(missing); });
  EXPECT_TRUE(Contains(msg, missing.string()));
  EXPECT_TRUE(Contains(msg, "does not exist"));
}

TEST_F(ConfigErrors, DirectoryInsteadOfFileIsAnInputError) {
  const std::string msg = input_error([&] { load_config(tmp.path); });
  EXPECT_TRUE(Contains(msg, tmp.path.string()));
}

TEST_F(ConfigErrors, MalformedJsonGivesFileLineAndColumn) {
  // The stray '}' after the trailing comma is line 2, column 28.
  write_text(file(), "{\n  \"model\": {\"path\": \"m.pt\",}\n}\n");
  const std::string msg = input_error([&] { load_config(file()); });
  EXPECT_TRUE(Contains(msg, file().string() + ":2:28"));
  EXPECT_TRUE(Contains(msg, "malformed JSON"));
}

TEST_F(ConfigErrors, MalformedJsonOnTheFirstLine) {
  write_text(file(), "{\"model\" {}}");  // missing ':' at column 10
  const std::string msg = input_error([&] { load_config(file()); });
  EXPECT_TRUE(Contains(msg, file().string() + ":1:10"));
  EXPECT_TRUE(Contains(msg, "malformed JSON"));
  write_text(file(), "");  // an empty file is malformed too
  EXPECT_TRUE(Contains(input_error([&] { load_config(file()); }), file().string() + ":1:1: malformed JSON"));
}

TEST(ConfigJsonText, ParseJsonTextReportsLineAndColumn) {
  const std::string msg = input_error([] { diffode::parse_json_text("[1,\n2,\n  x]", "where"); });
  EXPECT_TRUE(Contains(msg, "where:3:3"));
  EXPECT_TRUE(Contains(msg, "malformed JSON"));
}

TEST_F(ConfigErrors, TopLevelMustBeAnObject) {
  const std::string msg = error_for(json::array({1, 2}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "expected an object"));
}

TEST_F(ConfigErrors, UnknownKeySuggestsTheNearestName) {
  const std::string msg = error_for(with("solver", {{"stpes", 10}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/solver/stpes"));
  EXPECT_TRUE(Contains(msg, "unknown key 'stpes'"));
  EXPECT_TRUE(Contains(msg, "did you mean 'steps'"));
}

TEST_F(ConfigErrors, UnknownTopLevelKeySuggestsTheNearestName) {
  json j = minimal();
  j["samplng"] = json::object();
  const std::string msg = error_for(j);
  EXPECT_TRUE(Contains(msg, "/samplng"));
  EXPECT_TRUE(Contains(msg, "did you mean 'sampling'"));
}

TEST_F(ConfigErrors, UnknownKeyFarFromAnyNameListsTheValidOnes) {
  const std::string msg = error_for(with("output", {{"zzzzzzzz", 1}}));
  EXPECT_TRUE(Contains(msg, "/output/zzzzzzzz"));
  EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
  EXPECT_TRUE(Contains(msg, "grid_cols"));
}

TEST_F(ConfigErrors, UnknownModelKeyIsAnError) {
  json j = minimal();
  j["model"]["predicton"] = "x0";
  const std::string msg = error_for(j);
  EXPECT_TRUE(Contains(msg, "/model/predicton"));
  EXPECT_TRUE(Contains(msg, "did you mean 'prediction'"));
}

TEST_F(ConfigErrors, WrongTypeNamesPointerExpectedAndGot) {
  const std::string msg = error_for(with("solver", {{"steps", "ten"}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/solver/steps"));
  EXPECT_TRUE(Contains(msg, "expected an integer"));
  EXPECT_TRUE(Contains(msg, "\"ten\""));
  // A fractional number is not an integer either.
  EXPECT_TRUE(Contains(error_for(with("solver", {{"steps", 2.5}})), "expected an integer"));
}

TEST_F(ConfigErrors, SectionOfTheWrongTypeIsAnError) {
  const std::string msg = error_for(with("solver", "heun"));
  EXPECT_TRUE(Contains(msg, "/solver"));
  EXPECT_TRUE(Contains(msg, "expected an object"));
}

TEST_F(ConfigErrors, WrongTypeInsideAList) {
  const std::string msg = error_for(with("schedule", {{"name", "custom"}, {"sigmas", {80, "x", 0}}}));
  EXPECT_TRUE(Contains(msg, "/schedule/sigmas"));
  EXPECT_TRUE(Contains(msg, "a list of numbers"));
}

TEST_F(ConfigErrors, WrongTypeOfAModelOverride) {
  json j = minimal();
  j["model"]["sample_shape"] = "3x8x8";
  const std::string msg = error_for(j);
  EXPECT_TRUE(Contains(msg, "/model/sample_shape"));
  EXPECT_TRUE(Contains(msg, "a list of integers"));
}

TEST_F(ConfigErrors, UnknownSolverListsTheValidOnes) {
  const std::string msg = error_for(with("solver", {{"name", "hen"}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/solver/name"));
  EXPECT_TRUE(Contains(msg, "unknown solver 'hen'"));
  EXPECT_TRUE(Contains(msg, "did you mean 'heun'"));
  for (const auto& name : diffode::solver_names()) EXPECT_TRUE(Contains(msg, name));
}

TEST_F(ConfigErrors, UnknownScheduleListsTheValidOnes) {
  const std::string msg = error_for(with("schedule", {{"name", "polynomal"}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/schedule/name"));
  EXPECT_TRUE(Contains(msg, "unknown schedule 'polynomal'"));
  EXPECT_TRUE(Contains(msg, "did you mean 'polynomial'"));
  for (const auto& name : diffode::schedule_names()) EXPECT_TRUE(Contains(msg, name));
}

TEST_F(ConfigErrors, StepsBelowOne) {
  for (int steps : {0, -3}) {
    const std::string msg = error_for(with("solver", {{"steps", steps}}));
    EXPECT_TRUE(Contains(msg, file().string()));
    EXPECT_TRUE(Contains(msg, "/solver/steps"));
    EXPECT_TRUE(Contains(msg, "must be in [1, 100000], got " + std::to_string(steps)));
  }
}

TEST_F(ConfigErrors, NfeBelowOne) {
  const std::string msg = error_for(with("solver", {{"nfe", 0}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/solver/nfe"));
  EXPECT_TRUE(Contains(msg, "must be in [1, 100000], got 0"));
}

TEST_F(ConfigErrors, BothStepsAndNfe) {
  const std::string msg = error_for(with("solver", {{"steps", 5}, {"nfe", 10}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/solver"));
  EXPECT_TRUE(Contains(msg, "steps"));
  EXPECT_TRUE(Contains(msg, "nfe"));
  EXPECT_TRUE(Contains(msg, "not both"));
  // The same when one of them comes from --set.
  EXPECT_TRUE(Contains(error_for(with("solver", {{"steps", 5}}), {"solver.nfe=10"}), "not both"));
}

TEST_F(ConfigErrors, RhoOnLogsnr) {
  const std::string msg = error_for(with("schedule", {{"name", "logsnr"}, {"rho", 7}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/schedule/rho"));
  EXPECT_TRUE(Contains(msg, "logsnr"));
  EXPECT_TRUE(Contains(msg, "takes no 'rho'"));
}

TEST_F(ConfigErrors, SigmasOnPolynomial) {
  const std::string msg = error_for(with("schedule", {{"name", "polynomial"}, {"sigmas", {2, 1}}}));
  EXPECT_TRUE(Contains(msg, "/schedule/sigmas"));
  EXPECT_TRUE(Contains(msg, "takes no 'sigmas'"));
}

TEST_F(ConfigErrors, BetasOnOtherSchedules) {
  for (const char* name : {"polynomial", "logsnr", "time_uniform", "custom"})
    for (const char* beta : {"beta_min", "beta_max"}) {
      json schedule = {{"name", name}, {beta, 1}};
      if (std::string(name) == "custom") schedule["sigmas"] = {2, 1};
      const std::string msg = error_for(with("schedule", schedule));
      EXPECT_TRUE(Contains(msg, file().string()));
      EXPECT_TRUE(Contains(msg, std::string("/schedule/") + beta));
      EXPECT_TRUE(Contains(msg, std::string("schedule '") + name + "' takes no '" + beta + "'"));
    }
  // ... and rho on vp_time.
  EXPECT_TRUE(Contains(error_for(with("schedule", {{"name", "vp_time"}, {"rho", 7}})), "takes no 'rho'"));
}

TEST_F(ConfigErrors, BetasMustBePositiveAndIncreasing) {
  const std::string zero = error_for(with("schedule", {{"name", "vp_time"}, {"beta_min", 0}}));
  EXPECT_TRUE(Contains(zero, "/schedule/beta_min"));
  EXPECT_TRUE(Contains(zero, "must be > 0, got 0"));
  const std::string negative = error_for(with("schedule", {{"name", "vp_time"}, {"beta_max", -1}}));
  EXPECT_TRUE(Contains(negative, "/schedule/beta_max"));
  EXPECT_TRUE(Contains(negative, "must be > 0, got -1"));
  const std::string order = error_for(with("schedule", {{"name", "vp_time"}, {"beta_min", 5}, {"beta_max", 5}}));
  EXPECT_TRUE(Contains(order, "/schedule/beta_max"));
  EXPECT_TRUE(Contains(order, "beta_max must be > beta_min, got beta_min 5.0, beta_max 5.0"));
  // A beta_min above the default beta_max is named at beta_min.
  const std::string above = error_for(with("schedule", {{"name", "vp_time"}, {"beta_min", 30}}));
  EXPECT_TRUE(Contains(above, "/schedule/beta_min"));
  EXPECT_TRUE(Contains(above, "beta_max must be > beta_min, got beta_min 30.0, beta_max 20.0"));
  const std::string type = error_for(with("schedule", {{"name", "vp_time"}, {"beta_min", "big"}}));
  EXPECT_TRUE(Contains(type, "/schedule/beta_min"));
}

TEST_F(ConfigErrors, RhoMustBePositive) {
  const std::string msg = error_for(with("schedule", {{"rho", 0}}));
  EXPECT_TRUE(Contains(msg, "/schedule/rho"));
  EXPECT_TRUE(Contains(msg, "> 0"));
}

TEST_F(ConfigErrors, CustomSigmasNotDecreasing) {
  const std::string msg = error_for(with("schedule", {{"name", "custom"}, {"sigmas", {10, 1, 2, 0}}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/schedule/sigmas/2"));
  EXPECT_TRUE(Contains(msg, "strictly decrease"));
  // A repeated value does not strictly decrease either.
  const std::string repeated = error_for(with("schedule", {{"name", "custom"}, {"sigmas", {10, 1, 1}}}));
  EXPECT_TRUE(Contains(repeated, "/schedule/sigmas/2"));
  EXPECT_TRUE(Contains(repeated, "strictly decrease"));
}

TEST_F(ConfigErrors, CustomSigmasNegative) {
  const std::string msg = error_for(with("schedule", {{"name", "custom"}, {"sigmas", {10, 1, -1}}}));
  EXPECT_TRUE(Contains(msg, "/schedule/sigmas/2"));
  EXPECT_TRUE(Contains(msg, ">= 0"));
}

TEST_F(ConfigErrors, CustomScheduleNeedsAtLeastTwoSigmas) {
  const std::string none = error_for(with("schedule", {{"name", "custom"}}));
  EXPECT_TRUE(Contains(none, "/schedule/sigmas"));
  EXPECT_TRUE(Contains(none, "custom"));
  const std::string one = error_for(with("schedule", {{"name", "custom"}, {"sigmas", {1}}}));
  EXPECT_TRUE(Contains(one, "/schedule/sigmas"));
  EXPECT_TRUE(Contains(one, "at least 2"));
}

TEST_F(ConfigErrors, CustomScheduleWithConflictingSteps) {
  json j = with("schedule", {{"name", "custom"}, {"sigmas", {10, 1, 0.1}}});
  j["solver"] = {{"steps", 5}};
  const std::string msg = error_for(j);
  EXPECT_TRUE(Contains(msg, "/solver/steps"));
  EXPECT_TRUE(Contains(msg, "2 steps"));
}

TEST_F(ConfigErrors, NumSamplesZero) {
  const std::string msg = error_for(with("sampling", {{"num_samples", 0}}));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/sampling/num_samples"));
  EXPECT_TRUE(Contains(msg, "must be in [1, 1099511627776], got 0"));
}

TEST_F(ConfigErrors, BatchSizeZeroAndNegativeSeed) {
  EXPECT_TRUE(Contains(error_for(with("sampling", {{"batch_size", 0}})), "/sampling/batch_size"));
  EXPECT_TRUE(Contains(error_for(with("sampling", {{"seed", -1}})), "/sampling/seed"));
}

TEST_F(ConfigErrors, MissingModelPath) {
  const std::string msg = error_for(json::parse(R"({"model": {"device": "cpu"}})"));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/model/path"));
  EXPECT_TRUE(Contains(msg, "missing"));
}

TEST_F(ConfigErrors, MissingModelSection) {
  const std::string msg = error_for(json::parse(R"({"solver": {"name": "euler"}})"));
  EXPECT_TRUE(Contains(msg, file().string()));
  EXPECT_TRUE(Contains(msg, "/model"));
  EXPECT_TRUE(Contains(msg, "missing"));
}

TEST_F(ConfigErrors, ModelPathCanComeFromSet) {
  write_text(file(), R"({"solver": {"name": "euler"}})");
  const Config c = load_config(file(), {"model.path=/abs/m.pt"});
  EXPECT_EQ(c.model.path, fs::path("/abs/m.pt"));
}

TEST_F(ConfigErrors, UnknownSolverPrecision) {
  const std::string msg = error_for(with("solver", {{"precision", "float16"}}));
  EXPECT_TRUE(Contains(msg, "/solver/precision"));
  EXPECT_TRUE(Contains(msg, "float64"));
}

TEST_F(ConfigErrors, UnknownModelDtype) {
  json j = minimal();
  j["model"]["dtype"] = "float33";
  const std::string msg = error_for(j);
  EXPECT_TRUE(Contains(msg, "/model/dtype"));
  EXPECT_TRUE(Contains(msg, "did you mean 'float32'"));
}

TEST_F(ConfigErrors, MaxOrderOnlyForMultistepSolversAndInRange) {
  const std::string none = error_for(with("solver", {{"name", "heun"}, {"max_order", 2}}));
  EXPECT_TRUE(Contains(none, "/solver/max_order"));
  EXPECT_TRUE(Contains(none, "heun"));
  const std::string range = error_for(with("solver", {{"name", "ipndm"}, {"max_order", 5}}));
  EXPECT_TRUE(Contains(range, "/solver/max_order"));
  EXPECT_TRUE(Contains(range, "[1, 4]"));
}

TEST_F(ConfigErrors, BadDevice) {
  json j = minimal();
  j["model"]["device"] = "tpu";
  const std::string msg = error_for(j);
  EXPECT_TRUE(Contains(msg, "/model/device"));
  EXPECT_TRUE(Contains(msg, "tpu"));
}

TEST_F(ConfigErrors, GridColsZero) {
  const std::string msg = error_for(with("output", {{"grid_cols", 0}}));
  EXPECT_TRUE(Contains(msg, "/output/grid_cols"));
}

TEST(ConfigMetadata, ValidMetadataPasses) {
  EXPECT_NO_THROW(diffode::validate_model_metadata(
      json::parse(R"({"prediction": "x0", "process": {"type": "edm"}, "sample_shape": [3, 8, 8],
                      "data_range": [-1, 1], "sigma_min": 0.002, "sigma_max": 80, "num_classes": 0})"),
      "meta", false));
}

TEST(ConfigMetadata, ExtraKeysAllowedOnlyWhenAsked) {
  const json meta = json::parse(R"({"prediction": "x0", "gauss_s": 0.5})");
  EXPECT_NO_THROW(diffode::validate_model_metadata(meta, "meta", true));
  const std::string msg = input_error([&] { diffode::validate_model_metadata(meta, "meta", false); });
  EXPECT_TRUE(Contains(msg, "meta"));
  EXPECT_TRUE(Contains(msg, "/gauss_s"));
}

TEST(ConfigMetadata, WrongTypeNamesTheKey) {
  const std::string msg = input_error(
      [] { diffode::validate_model_metadata(json::parse(R"({"sigma_max": "80"})"), "meta", true); });
  EXPECT_TRUE(Contains(msg, "meta"));
  EXPECT_TRUE(Contains(msg, "/sigma_max"));
  EXPECT_TRUE(Contains(msg, "expected a number"));
}

TEST(ConfigMetadata, ProcessNeedsAType) {
  const std::string msg = input_error(
      [] { diffode::validate_model_metadata(json::parse(R"({"process": {"beta_min": 0.1}})"), "meta", false); });
  EXPECT_TRUE(Contains(msg, "/process/type"));
}

}  // namespace

// JSON beyond what a config can mean is refused by name, never a crash or a silent choice.
TEST_F(ConfigErrors, DeepNestingRepeatedKeysAndHugeNumbersAreNamed) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  write_text(file(), R"({"model": {"path": "m.pt", "threads": )" + deep + "}}");
  std::string msg = input_error([&] { load_config(file()); });
  EXPECT_TRUE(Contains(msg, file().string() + ": nested deeper than 64 levels")) << msg.substr(0, 300);
  EXPECT_LT(msg.size(), 400u);
  write_text(file(), R"({"model": {"path": "m.pt"}, "solver": {"name": "heun"}, "solver": {"name": "euler"}})");
  msg = input_error([&] { load_config(file()); });
  EXPECT_TRUE(Contains(msg, file().string() + ": the key \"solver\" appears twice in one object")) << msg;
  write_text(file(), R"({"model": {"path": "m.pt"}, "schedule": {"rho": 1e400}})");
  msg = input_error([&] { load_config(file()); });
  EXPECT_TRUE(Contains(msg, file().string() + ": number overflow parsing '1e400'")) << msg;
  write_text(file(), R"({"model": {"path": "m.pt"}})");
  msg = input_error([&] { load_config(file(), {"schedule.rho=1e400"}); });
  EXPECT_TRUE(Contains(msg, "--set 'schedule.rho': number overflow")) << msg;
  msg = input_error([&] { load_config(file(), {"model.threads=" + deep}); });
  EXPECT_TRUE(Contains(msg, "--set 'model.threads': nested deeper than 64 levels")) << msg.substr(0, 300);
  msg = input_error([&] { load_config(file(), {R"(solver={"name": "heun", "name": "euler"})"}); });
  EXPECT_TRUE(Contains(msg, "appears twice")) << msg;
  // 64 levels are fine (the value is then refused for its type, by name).
  const std::string ok = std::string(63, '[') + std::string(63, ']');
  msg = input_error([&] { load_config(file(), {"model.threads=" + ok}); });
  EXPECT_TRUE(Contains(msg, "/model/threads")) << msg.substr(0, 300);
}

TEST(ConfigJsonText, RecordsTooDeepOrWithRepeatedKeysReadAsAbsent) {
  diffode::test::TempDir tmp;
  const auto f = tmp.path / "r.json";
  write_text(f, std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_TRUE(diffode::read_json_file(f).is_null());
  write_text(f, R"({"a": 1, "a": 2})");
  EXPECT_TRUE(diffode::read_json_file(f).is_null());
  write_text(f, R"({"a": {"b": [1, 2]}})");
  EXPECT_EQ(diffode::read_json_file(f)["a"]["b"][1], 2);
}

// Integers beyond their key's type are refused as written, never cut to their low bits.
TEST_F(ConfigErrors, IntegersBeyondTheirTypeAreRefusedAsWritten) {
  std::string msg = error_for(minimal(), {"solver.steps=4294967300"});  // was run as 4 steps
  EXPECT_TRUE(Contains(msg, "/solver/steps: must be an integer in [-2147483648, 2147483647], got 4294967300")) << msg;
  msg = error_for(minimal(), {"model.threads=4294967297"});
  EXPECT_TRUE(Contains(msg, "/model/threads")) << msg;
  EXPECT_TRUE(Contains(msg, "got 4294967297")) << msg;
  msg = error_for(minimal(), {"solver.max_order=4294967298"});  // was 2, inside 1..4
  EXPECT_TRUE(Contains(msg, "/solver/max_order: must be an integer in")) << msg;
  msg = error_for(minimal(), {"sampling.batch_size=18446744073709551615"});
  EXPECT_TRUE(Contains(msg, "/sampling/batch_size: must be an integer in [-9223372036854775808, 9223372036854775807], "
                            "got 18446744073709551615")) << msg;
  msg = error_for(minimal(), {"sampling.labels=[0, 18446744073709551615]"});  // was "label -1"
  EXPECT_TRUE(Contains(msg, "/sampling/labels/1: must be an integer in")) << msg;
  msg = error_for(with("compare", {{"solvers", {{{"name", "euler"}}}}, {"nfe", {5, 9223372036854775807LL}}}));
  EXPECT_TRUE(Contains(msg, "/compare/nfe/1: must be an integer in [-2147483648, 2147483647], got 9223372036854775807"))
      << msg;
  msg = error_for(with("compare", {{"solvers", {{{"name", "euler"}}}}, {"nfe", {5}}, {"grid_samples", 4294967296LL}}));
  EXPECT_TRUE(Contains(msg, "/compare/grid_samples: must be an integer in")) << msg;
}

// Numbers that would exhaust the machine are bounded, the bound named.
TEST_F(ConfigErrors, StepsNfeAndThreadsAreBounded) {
  EXPECT_TRUE(Contains(error_for(minimal(), {"solver.steps=1000000000"}),
                       "/solver/steps: must be in [1, 100000], got 1000000000"));
  EXPECT_TRUE(Contains(error_for(minimal(), {"solver.nfe=100001"}), "/solver/nfe: must be in [1, 100000]"));
  EXPECT_TRUE(Contains(error_for(minimal(), {"model.threads=100000"}),
                       "/model/threads: must be in [0, 1024] (0 = all cores), got 100000"));
  EXPECT_TRUE(Contains(error_for(with("compare", {{"solvers", {{{"name", "euler"}}}}, {"nfe", {5, 0}}})),
                       "/compare/nfe/1: must be in [1, 100000], got 0"));
  EXPECT_TRUE(Contains(error_for(with("compare", {{"solvers", {{{"name", "euler"}}}}, {"nfe", {5}},
                                                  {"reference", {{"steps", 1000000}}}})),
                       "/compare/reference/steps: must be in [2, 100000]"));
  EXPECT_TRUE(Contains(error_for(with("tune", {{"points", 5000}})), "/tune/points: must be in [1, 4096]"));
  // batch_size 2^63 - 1 overflowed the batch count (an internal error with no samples).
  EXPECT_TRUE(Contains(error_for(minimal(), {"sampling.batch_size=9223372036854775807"}),
                       "/sampling/batch_size: must be in [1, 1048576], got 9223372036854775807"));
  EXPECT_TRUE(Contains(error_for(minimal(), {"sampling.num_samples=2000000000000"}),
                       "/sampling/num_samples: must be in [1, 1099511627776]"));
  EXPECT_TRUE(Contains(error_for(minimal(), {"sampling.seed=9223372036854775807"}),
                       "/sampling/seed: must be in [0, 4611686018427387904]"));
}

// An empty path names no file; as output.dir it would be the working directory (as -o ''
// would, which the CLI refuses). Every path key refuses it, by name, from a file or --set.
TEST_F(ConfigErrors, AnEmptyPathIsRefusedByName) {
  const std::string set = error_for(minimal(), {"output.dir="});
  EXPECT_TRUE(Contains(set, "/output/dir: must be a path, got an empty string"));
  EXPECT_TRUE(Contains(error_for(with("output", {{"dir", ""}})), "/output/dir: must be a path"));
  EXPECT_TRUE(Contains(error_for({{"model", {{"path", ""}}}}), "/model/path: must be a path"));
  EXPECT_TRUE(Contains(error_for(with("schedule", {{"name", "tuned"}, {"path", ""}})), "/schedule/path: must be a path"));
  // A config as diffode writes it back (an unset path left out) reads again.
  const Config c = parse_config(minimal(), "inline", "/");
  EXPECT_NO_THROW(parse_config(to_json(c), "inline", "/"));
}

// A learning rate past float's range failed inside Adam as an internal error.
TEST_F(ConfigErrors, TheLearningRateIsBounded) {
  EXPECT_TRUE(Contains(error_for(minimal(), {"distill.lr=1e300"}), "/distill/lr: must be in (0.0, 10.0], got 1e+300"));
  EXPECT_TRUE(Contains(error_for(minimal(), {"distill.lr=0"}), "/distill/lr: must be in (0.0, 10.0], got 0"));
}

// Text that is not UTF-8 cannot be written into a run's records: named at its key.
TEST_F(ConfigErrors, TextThatIsNotUtf8IsNamed) {
  EXPECT_TRUE(Contains(error_for(minimal(), {"model.device=c\xff"}), "/model/device: is not UTF-8 text"));
  EXPECT_TRUE(Contains(error_for(minimal(), {"output.dir=\xc3\x28"}), "/output/dir: is not UTF-8 text"));
  EXPECT_TRUE(diffode::valid_utf8("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(diffode::valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(diffode::valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(diffode::valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(diffode::valid_utf8("\xe2\x82"));          // cut
}
