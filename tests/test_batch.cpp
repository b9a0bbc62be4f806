// Batch runs (DESIGN.md §8): several configs or the points of a sweep, each a named run in
// its own folder, with index.json and index.csv kept after every run; the run set as
// load_run_set expands it, the index as run_batch writes it, and both end to end through
// the CLI, with every bad sweep named (exit 2).
#include <algorithm>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/runs/config.hpp"
#include "diffode/runs/run.hpp"
#include "test_cli_util.hpp"

namespace {

using namespace diffode::test::cli;
using diffode::NamedConfig;
using diffode::RunOptions;

json gauss_sweep_config() {
  return {{"model", {{"path", model_path("gauss.pt").string()}}},
          {"solver", {{"name", "euler"}}},
          {"sampling", {{"num_samples", 4}, {"batch_size", 4}}},
          {"sweep", {{"solver.name", {"euler", "heun"}}, {"solver.steps", {3, 5}}}}};
}

std::vector<std::string> names_of(const std::vector<NamedConfig>& runs) {
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r.name);
  return out;
}

// The lines of a text file, without their newlines.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

// A record as run_sample returns it, with the fields an index row reads.
json sample_record(const std::string& solver, int nfe, int64_t samples, const json& fd = nullptr) {
  json r = {{"run", {{"solver", {{"name", solver}}}, {"nfe", nfe}}}, {"seeds", {{"count", samples}}}};
  if (!fd.is_null()) r["quality"] = {{"frechet_distance", fd}};
  return r;
}

}  // namespace

// ---------------------------------------------------------------- the run set

// A sweep is the cartesian product of its lists, the last key fastest; each point is named
// after its values and carries them; --set applies to every point.
TEST(BatchRunSet, ASweepIsTheCartesianProductLastKeyFastest) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "sweep.json", gauss_sweep_config());
  const std::vector<NamedConfig> runs = diffode::load_run_set({cfg}, {"sampling.seed=7"});
  EXPECT_EQ(names_of(runs), (std::vector<std::string>{"name-euler_steps-3", "name-euler_steps-5", "name-heun_steps-3",
                                                      "name-heun_steps-5"}));
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string solver = i < 2 ? "euler" : "heun";
    const int steps = i % 2 ? 5 : 3;
    EXPECT_EQ(runs[i].sweep, json({{"solver.name", solver}, {"solver.steps", steps}})) << runs[i].name;
    EXPECT_EQ(runs[i].config.solver.info().name, solver) << runs[i].name;
    EXPECT_EQ(runs[i].config.solver.steps, steps) << runs[i].name;
    EXPECT_EQ(runs[i].config.sampling.seed, 7) << runs[i].name;
    EXPECT_EQ(runs[i].config.source, cfg.string()) << runs[i].name;
  }
  // Three keys: 2 × 1 × 3 points.
  json three = gauss_sweep_config();
  three["sweep"] = {{"solver.name", {"euler", "heun"}}, {"sampling.seed", {1}}, {"solver.steps", {2, 4, 6}}};
  const auto more = diffode::load_run_set({write_json(tmp.path / "three.json", three)});
  ASSERT_EQ(more.size(), 6u);
  EXPECT_EQ(more[0].name, "seed-1_name-euler_steps-2");  // keys in JSON (sorted) order
  EXPECT_EQ(more[2].name, "seed-1_name-euler_steps-6");
  EXPECT_EQ(more[3].name, "seed-1_name-heun_steps-2");
  EXPECT_EQ(more[5].config.solver.steps, 6);
}

// Several files: each run is named after its file (and its sweep values), names kept unique;
// a swept path resolves against its file's folder and is named by its file name.
TEST(BatchRunSet, SeveralFilesAreNamedAfterTheirStemsUniquely) {
  TempDir tmp;
  json plain = gauss_sweep_config();
  plain.erase("sweep");
  const fs::path a = write_json(tmp.path / "a.json", plain);
  json swept = plain;
  swept["sweep"] = {{"model.path", {"gauss.pt", model_path("gmm2d.pt").string()}}};
  const fs::path b = write_json(tmp.path / "b.json", swept);
  const fs::path a2 = write_json(tmp.path / "other" / "a.json", plain);
  const std::vector<NamedConfig> runs = diffode::load_run_set({a, b, a2});
  EXPECT_EQ(names_of(runs), (std::vector<std::string>{"a", "b_path-gauss.pt", "b_path-gmm2d.pt", "a-2"}));
  EXPECT_EQ(runs[0].sweep, json::object());
  EXPECT_EQ(runs[1].config.model.path, tmp.path / "gauss.pt");  // relative to b.json's folder
  EXPECT_EQ(runs[2].config.model.path, model_path("gmm2d.pt"));
  EXPECT_EQ(runs[1].sweep, json({{"model.path", "gauss.pt"}}));
  EXPECT_EQ(runs[3].config.source, a2.string());
  // One file without a sweep is one run named after it.
  EXPECT_EQ(names_of(diffode::load_run_set({a})), std::vector<std::string>{"a"});
}

// ---------------------------------------------------------------- the index

// index.json and index.csv hold a row per run, rewritten after every run: the run, its
// folder, its config, the headline numbers and each swept key (CSV quoted where needed).
TEST(BatchIndex, RowsAreWrittenAfterEveryRunWithTheSweptKeys) {
  TempDir tmp;
  json base = gauss_sweep_config();
  base.erase("sweep");
  const fs::path odd = write_json(tmp.path / "run, \"2\".json", base);
  std::vector<NamedConfig> runs = diffode::load_run_set({odd});
  ASSERT_EQ(runs.size(), 1u);
  runs.push_back(runs[0]);
  runs[0].name = "first";
  runs[0].sweep = {{"solver.steps", 3}};
  runs[1].name = "second";
  runs[1].sweep = {{"sampling.labels", {1, 2}}, {"solver.name", "heun"}};
  const fs::path root = tmp.path / "root";
  std::vector<fs::path> dirs;
  std::vector<size_t> rows_seen;
  const json rows = diffode::run_batch(
      runs, root,
      [&](const diffode::Config&, const fs::path& dir, const RunOptions&) {
        dirs.push_back(dir);
        const fs::path index = root / "index.json";
        rows_seen.push_back(fs::exists(index) ? json::parse(read_file(index)).size() : 0);
        return dirs.size() == 1 ? sample_record("euler", 3, 4) : sample_record("heun", 10, 4, 12.5);
      },
      RunOptions{});
  EXPECT_EQ(dirs, (std::vector<fs::path>{root / "first", root / "second"}));
  EXPECT_EQ(rows_seen, (std::vector<size_t>{0, 1}));  // the first row was written before the second run
  const json index = json::parse(read_file(root / "index.json"));
  EXPECT_EQ(index, rows);
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[0], json({{"run", "first"}, {"dir", "first"}, {"config", odd.string()}, {"sweep", {{"solver.steps", 3}}},
                            {"solver", "euler"}, {"nfe", 3}, {"samples", 4}, {"frechet_distance", nullptr}}));
  EXPECT_EQ(index[1]["frechet_distance"], 12.5);
  const std::string config = "\"" + tmp.path.string() + "/run, \"\"2\"\".json\"";
  EXPECT_EQ(lines_of(read_file(root / "index.csv")),
            (std::vector<std::string>{
                "run,dir,config,solver,nfe,samples,frechet_distance,cells,solver.steps,sampling.labels,solver.name",
                "first,first," + config + ",euler,3,4,,,3,,",
                "second,second," + config + ",heun,10,4,12.5,,,\"[1,2]\",heun"}));
}

// A comparison's row counts its cells; shards are indexed when merged, not per shard.
TEST(BatchIndex, ComparisonsCountCellsAndShardsWriteNoIndex) {
  TempDir tmp;
  const std::vector<NamedConfig> runs =
      diffode::load_run_set({write_json(tmp.path / "sweep.json", gauss_sweep_config())});
  const auto compare = [](const diffode::Config&, const fs::path&, const RunOptions&) {
    return json({{"cells", json::array({1, 2, 3})}});
  };
  diffode::run_batch({runs[0], runs[3]}, tmp.path / "cmp", compare, RunOptions{});
  const json index = json::parse(read_file(tmp.path / "cmp" / "index.json"));
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[1]["cells"], 3);
  EXPECT_FALSE(index[1].contains("solver"));
  EXPECT_EQ(lines_of(read_file(tmp.path / "cmp" / "index.csv"))[2],
            "name-heun_steps-5,name-heun_steps-5," + (tmp.path / "sweep.json").string() + ",,,,,3,heun,5");

  RunOptions shard;
  shard.shard = {1, 2};
  int calls = 0;
  const json rows = diffode::run_batch(runs, tmp.path / "sh", [&](const diffode::Config&, const fs::path&, const RunOptions& o) {
    ++calls;
    EXPECT_EQ(o.shard.index, 1);
    EXPECT_EQ(o.shard.count, 2);
    return sample_record("euler", 3, 2);
  }, shard);
  EXPECT_EQ(calls, 4);
  EXPECT_TRUE(rows.empty());
  EXPECT_FALSE(fs::exists(tmp.path / "sh" / "index.json"));
  EXPECT_FALSE(fs::exists(tmp.path / "sh" / "index.csv"));
}

// A run that fails stops the batch; the index keeps the runs before it.
TEST(BatchIndex, AFailedRunStopsTheBatchAndTheIndexKeepsTheRunsBefore) {
  TempDir tmp;
  const std::vector<NamedConfig> runs =
      diffode::load_run_set({write_json(tmp.path / "sweep.json", gauss_sweep_config())});
  int calls = 0;
  const auto fail_second = [&](const diffode::Config&, const fs::path&, const RunOptions&) {
    if (++calls == 2) throw diffode::InputError("second run refused");
    return sample_record("euler", 3, 4);
  };
  EXPECT_THROW(diffode::run_batch(runs, tmp.path / "root", fail_second, RunOptions{}), diffode::InputError);
  EXPECT_EQ(calls, 2);
  const json index = json::parse(read_file(tmp.path / "root" / "index.json"));
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0]["run"], "name-euler_steps-3");
  EXPECT_EQ(lines_of(read_file(tmp.path / "root" / "index.csv")).size(), 2u);
}

// ---------------------------------------------------------------- end to end

TEST(Batch, ASweepRunsEveryPointIntoItsOwnFolderWithAnIndex) {
  TempDir tmp;
  const fs::path cfg = write_json(tmp.path / "sweep.json", gauss_sweep_config());
  const fs::path root = tmp.path / "root";
  const CliResult r = run_cli("sample -c " + q(cfg) + " -o " + q(root));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::vector<std::string> names = {"name-euler_steps-3", "name-euler_steps-5", "name-heun_steps-3",
                                          "name-heun_steps-5"};
  const json index = json::parse(read_file(root / "index.json"));
  ASSERT_EQ(index.size(), 4u);
  for (size_t i = 0; i < names.size(); ++i) {
    const json m = json::parse(read_file(root / names[i] / "manifest.json"));
    EXPECT_EQ(m["run"]["solver"]["name"], i < 2 ? "euler" : "heun") << names[i];
    EXPECT_EQ(m["run"]["solver"]["steps"], i % 2 ? 5 : 3) << names[i];
    EXPECT_EQ(index[i]["run"], names[i]);
    EXPECT_EQ(index[i]["sweep"]["solver.steps"], i % 2 ? 5 : 3);
    EXPECT_EQ(index[i]["nfe"], m["run"]["nfe"]);
  }
  const std::string csv = read_file(root / "index.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "run,dir,config,solver,nfe,samples,frechet_distance,cells,solver.name,solver.steps");
  const std::string nfe = json::parse(read_file(root / names[3] / "manifest.json"))["run"]["nfe"].dump();
  EXPECT_TRUE(Contains(csv, "name-heun_steps-5,name-heun_steps-5," + cfg.string() + ",heun," + nfe + ",4,,,heun,5\n"));

  // Again with --resume: every run is complete, nothing is sampled or rewritten.
  const auto before = snapshot(root / names[3]);
  const CliResult again = run_cli("sample -c " + q(cfg) + " -o " + q(root) + " --resume");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(Contains(again.output, "already holds this run, complete"));
  EXPECT_EQ(again.output.find("samples done"), std::string::npos) << again.output;
  EXPECT_EQ(snapshot(root / names[3]), before);
}

TEST(Batch, SeveralConfigsRunEachIntoAFolderNamedAfterIt) {
  TempDir tmp;
  json j = gauss_sweep_config();
  j.erase("sweep");
  const fs::path a = write_json(tmp.path / "a.json", j);
  j["solver"]["name"] = "dpmpp2m";
  const fs::path b = write_json(tmp.path / "b.json", j);
  const CliResult r = run_cli("sample -c " + q(a) + " " + q(b) + " -o " + q(tmp.path / "root"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(json::parse(read_file(tmp.path / "root" / "b" / "manifest.json"))["run"]["solver"]["name"], "dpmpp2m");
  const json index = json::parse(read_file(tmp.path / "root" / "index.json"));
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[0]["config"], a.string());
  EXPECT_EQ(index[1]["solver"], "dpmpp2m");
}

// Several configs, one of them with a sweep, through the CLI: a folder per run with its
// outputs, and one index.csv line per run naming it, its folder, config and numbers.
TEST(Batch, SeveralConfigsWithASweepGiveOneFolderAndOneIndexLineEach) {
  TempDir tmp;
  json j = gauss_sweep_config();
  j.erase("sweep");
  j["solver"]["steps"] = 4;
  const fs::path a = write_json(tmp.path / "a.json", j);
  j["sweep"] = {{"solver.name", {"euler", "heun"}}};
  const fs::path b = write_json(tmp.path / "b.json", j);
  const fs::path root = tmp.path / "root";
  const CliResult r = run_cli("sample -c " + q(a) + " " + q(b) + " --set sampling.num_samples=3 -o " + q(root));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::vector<std::string> runs = {"a", "b_name-euler", "b_name-heun"};
  for (const auto& run : runs) {
    EXPECT_TRUE(fs::is_regular_file(root / run / "manifest.json")) << run;
    EXPECT_TRUE(fs::is_regular_file(root / run / "samples.npy")) << run;
    EXPECT_EQ(json::parse(read_file(root / run / "manifest.json"))["seeds"]["count"], 3) << run;
  }
  for (const auto& f : files_under(root)) {  // nothing else in the batch folder
    const bool known = f == "index.csv" || f == "index.json" ||
                       std::any_of(runs.begin(), runs.end(), [&](const std::string& run) { return f.rfind(run + "/", 0) == 0; });
    EXPECT_TRUE(known) << f;
  }
  EXPECT_EQ(lines_of(read_file(root / "index.csv")),
            (std::vector<std::string>{"run,dir,config,solver,nfe,samples,frechet_distance,cells,solver.name",
                                      "a,a," + a.string() + ",euler,4,3,,,",
                                      "b_name-euler,b_name-euler," + b.string() + ",euler,4,3,,,euler",
                                      "b_name-heun,b_name-heun," + b.string() + ",heun,8,3,,,heun"}));
}

TEST(Batch, BadSweepsAreNamed) {
  TempDir tmp;
  auto with_sweep = [&](const json& sweep) {
    json j = gauss_sweep_config();
    j["sweep"] = sweep;
    return write_json(tmp.path / "bad.json", j);
  };
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"solver.nmae", {"euler"}}}, "bad.json: /sweep/solver.nmae: unknown config key 'solver.nmae' (did you mean 'solver.name'?)"},
      {{{"solver.steps", json::array()}}, "/sweep/solver.steps: expected a non-empty list of values, got array []"},
      {{{"solver.steps", 3}}, "/sweep/solver.steps: expected a non-empty list of values, got number 3"},
      {{{"solver.steps", {3, "x"}}}, "/sweep/solver.steps/1: value \"x\": /solver/steps: expected an integer, got string"},
      {{{"solver.name", {"euler", "hen"}}}, "/sweep/solver.name/1: value \"hen\": /solver/name: unknown solver 'hen'"},
      {{{"solver", {1}}}, "/sweep/solver: unknown config key 'solver'"},
      {json::array(), "/sweep: expected an object of KEY: [values...]"},
      {json::object(), "/sweep: expected an object of KEY: [values...]"},
  };
  for (const auto& [sweep, message] : cases) {
    const CliResult r = run_cli("sample -c " + q(with_sweep(sweep)) + " -o " + q(tmp.path / "out"));
    EXPECT_EQ(r.code, 2) << sweep.dump() << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, message)) << sweep.dump();
    expect_clean_error(r);
  }
  const CliResult both = run_cli("sample -c " + q(with_sweep({{"solver.steps", {3, 5}}})) +
                                 " --set solver.steps=4 -o " + q(tmp.path / "out"));
  EXPECT_EQ(both.code, 2) << both.output;
  EXPECT_TRUE(Contains(both.output, "--set 'solver.steps=4' sets a swept key"));
  const CliResult distill = run_cli("distill -c " + q(with_sweep({{"solver.steps", {3, 5}}})) + " -o p.pt", tmp.path);
  EXPECT_EQ(distill.code, 2) << distill.output;
  EXPECT_TRUE(Contains(distill.output, "/sweep: a sweep makes several runs"));
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
  // A refusal by the first run (here: labels for an unconditional model) leaves no empty batch folder.
  json labelled = gauss_sweep_config();
  labelled["sampling"]["labels"] = {1};
  const CliResult first = run_cli("sample -c " + q(write_json(tmp.path / "l.json", labelled)) + " -o " +
                                  q(tmp.path / "out"));
  EXPECT_EQ(first.code, 2) << first.output;
  EXPECT_TRUE(Contains(first.output, "/sampling/labels: model")) << first.output;
  EXPECT_FALSE(fs::exists(tmp.path / "out"));
}
