// `diffode compare` end to end: its numbers against sample runs and the cached reference
// computed here, error falling at the solver's order on the Gaussian model, the NFE rule
// for unreachable targets, the outputs (table, CSV, JSON, labelled grid, PLplot figure),
// the cache, and every bad compare section (exit 2); a row's JSON for each of its states.
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>

#include "diffode/runs/compare.hpp"
#include "diffode/io/npy.hpp"
#include "plot.hpp"  // internal to diffode::runs: the plot's choices
#include "test_cli_util.hpp"

namespace {

using namespace diffode::test::cli;

struct CompareDir {
  TempDir tmp;
  CompareDir() { ::setenv("DIFFODE_CACHE", (tmp.path / "cache").c_str(), 1); }
  fs::path cache() const { return tmp.path / "cache"; }
};

json exact_compare_config() {
  return {{"model", {{"path", model_path("fmnist_exact.pt").string()}}},
          {"sampling", {{"num_samples", 8}, {"batch_size", 8}}},
          {"compare",
           {{"solvers", {{{"name", "euler"}}, {{"name", "dpmpp2m"}}, {{"name", "ipndm"}, {"label", "ipndm 3"}, {"max_order", 3}}}},
            {"nfe", {4, 6}},
            {"reference", {{"steps", 60}}}}}};
}

std::vector<float> npy_values(const fs::path& file) { return diffode::read_npy(file).data; }

fs::path only_reference_in(const fs::path& cache) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(cache))
    if (e.path().extension() == ".npy" && e.path().filename().string().rfind("reference-", 0) == 0) found.push_back(e.path());
  EXPECT_EQ(found.size(), 1u);
  return found.empty() ? fs::path() : found[0];
}

uint32_t be32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

TEST(Compare, NumbersMatchSampleRunsAgainstTheCachedReferenceAndOutputsAreWritten) {
  CompareDir d;
  const fs::path cfg = write_json(d.tmp.path / "cmp.json", exact_compare_config());
  const fs::path out = d.tmp.path / "out";
  const CliResult r = run_cli("compare -c " + q(cfg) + " -o " + q(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "| solver | NFE | RMSE | max err | PSNR (dB) | time (s) |"));
  EXPECT_TRUE(Contains(r.output, "| ipndm 3 | 6 | "));
  EXPECT_TRUE(Contains(r.output, "Reference: dpmpp3m at 60 steps (60 NFE)"));

  const json c = json::parse(read_file(out / "compare.json"));
  ASSERT_EQ(c["cells"].size(), 6u);
  EXPECT_LE(c["reference"]["convergence"]["rmse"].get<double>(), 0.01);
  EXPECT_EQ(c["reference"]["convergence"]["half_steps"], 30);

  // Each cell against `diffode sample` of the same solver and the cached reference, here.
  const std::vector<float> ref = npy_values(only_reference_in(d.cache()));
  ASSERT_EQ(ref.size(), 8u * 784);
  for (size_t k = 0; k < c["cells"].size(); ++k) {
    const json& cell = c["cells"][k];
    EXPECT_EQ(cell["nfe"], cell["target_nfe"]);
    const std::string label = cell["label"];
    const fs::path run = d.tmp.path / ("run-" + std::to_string(k));
    const std::string extra = label == "ipndm 3" ? " --set solver.max_order=3" : "";
    const CliResult s = run_cli("sample -c " + q(cfg) + " --set solver.name=" + cell["solver"].get<std::string>() +
                                " --set solver.nfe=" + cell["nfe"].dump() + extra + " -o " + q(run));
    ASSERT_EQ(s.code, 0) << s.output;
    const std::vector<float> x = npy_values(run / "samples.npy");
    ASSERT_EQ(x.size(), ref.size());
    double sq = 0, worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double e = static_cast<double>(x[i]) - ref[i];
      sq += e * e;
      worst = std::max(worst, std::abs(e));
    }
    const double rmse = std::sqrt(sq / static_cast<double>(x.size()));
    EXPECT_NEAR(cell["rmse"].get<double>(), rmse, 1e-9 * rmse) << label << " " << cell["nfe"];
    EXPECT_NEAR(cell["max_err"].get<double>(), worst, 1e-9) << label;
    EXPECT_NEAR(cell["psnr"].get<double>(), 20 * std::log10(2.0 / rmse), 1e-6) << label;  // data range [-1, 1]
    EXPECT_GT(cell["time_s"].get<double>(), 0);
  }

  const std::string csv = read_file(out / "compare.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "label,solver,target_nfe,nfe,steps,afs,space,schedule,rmse,max_err,psnr,frechet_distance,time_s,note");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_TRUE(Contains(csv, "\nipndm 3,ipndm,6,6,6,false,sigma,"));

  // The grid: the reference and six cells, each row 2 × 28 px tall with 4 px between.
  const std::string png = read_file(out / "compare_grid.png");
  ASSERT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(be32(png, 20), 4u + 7u * (56 + 4));
  EXPECT_GT(be32(png, 16), 8u * (56 + 4));
  const std::string svg = read_file(out / "error_vs_nfe.svg");
  EXPECT_TRUE(Contains(svg, "<svg"));
  EXPECT_EQ(read_file(out / "error_vs_nfe.png").substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));

  // Again: the reference comes from the cache and every cell is kept.
  const CliResult again = run_cli("compare -c " + q(cfg) + " -o " + q(out));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(Contains(again.output, "reference from the cache"));
  EXPECT_TRUE(Contains(again.output, "euler at NFE 6: kept from"));
  EXPECT_EQ(json::parse(read_file(out / "compare.json"))["cells"], c["cells"]);
}

TEST(Compare, ErrorFallsAtTheSolversOrderOnTheGaussianModel) {
  CompareDir d;
  const json j = {{"model", {{"path", model_path("gauss.pt").string()}}},
                  {"sampling", {{"num_samples", 16}, {"batch_size", 16}}},
                  {"compare", {{"solvers", {{{"name", "euler"}}, {{"name", "dpmpp2m"}}}}, {"nfe", {16, 32, 64}}}}};
  const CliResult r = run_cli("compare -c " + q(write_json(d.tmp.path / "g.json", j)) + " -o " + q(d.tmp.path / "out"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json cells = json::parse(read_file(d.tmp.path / "out" / "compare.json"))["cells"];
  ASSERT_EQ(cells.size(), 6u);
  // RMSE from 32 to 64 NFE: halves for Euler (order 1), quarters for DPM-Solver++(2M).
  const double euler = cells[1]["rmse"].get<double>() / cells[2]["rmse"].get<double>();
  const double dpmpp = cells[4]["rmse"].get<double>() / cells[5]["rmse"].get<double>();
  EXPECT_GT(euler, 1.6);
  EXPECT_LT(euler, 2.6);
  EXPECT_GT(dpmpp, 3.0);
  EXPECT_LT(dpmpp, 5.5);
  for (int i : {0, 3}) EXPECT_GT(cells[i]["rmse"].get<double>(), cells[i + 1]["rmse"].get<double>());
}

TEST(Compare, AnUnreachableNfeUsesTheLargestReachableOneBelowIt) {
  CompareDir d;
  json j = exact_compare_config();
  j["compare"]["solvers"] = {{{"name", "heun"}, {"afs", false}}};  // 2N: odd NFEs are out of reach
  j["compare"]["nfe"] = {5, 6, 1};                                // ... and no NFE reaches 1
  const CliResult r = run_cli("compare -c " + q(write_json(d.tmp.path / "h.json", j)) + " -o " + q(d.tmp.path / "out"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json cells = json::parse(read_file(d.tmp.path / "out" / "compare.json"))["cells"];
  ASSERT_EQ(cells.size(), 3u);
  EXPECT_EQ(cells[0]["target_nfe"], 5);
  EXPECT_EQ(cells[0]["nfe"], 4);
  EXPECT_EQ(cells[0]["note"], "NFE 5 is not reachable");
  EXPECT_EQ(cells[1]["nfe"], 6);
  EXPECT_FALSE(cells[1].contains("note"));
  EXPECT_TRUE(cells[2]["nfe"].is_null());
  EXPECT_TRUE(cells[2]["time_s"].is_null());
  EXPECT_FALSE(cells[2]["note"].get<std::string>().empty());
  EXPECT_TRUE(Contains(r.output, "| heun | 4 (of 5) |"));
  EXPECT_TRUE(Contains(r.output, "| heun | – | – | – | – | – |"));  // the unreachable cell
  // The summary: the fallback's NFE beside its RMSE, none for the unreachable target.
  EXPECT_TRUE(Contains(r.output, "| solver | RMSE @5 | RMSE @6 | RMSE @1 |\n|---|---:|---:|---:|\n| heun | "));
  EXPECT_TRUE(Contains(r.output, " (NFE 4) | "));
  EXPECT_TRUE(Contains(r.output, " | – |\n\nEvery cell:"));
}

// A cell whose model output is NaN (nan_at_sigma.pt: only at σ₁ of the 3-step grid) is
// recorded as diverged; the reference (50 and 25 steps: grids without that σ) and the
// other cells are measured as usual.
TEST(Compare, ACellThatDivergesIsRecordedAndTheOthersRun) {
  CompareDir d;
  const json j = {{"model", {{"path", data_path("nan_at_sigma.pt").string()}}},
                  {"sampling", {{"num_samples", 4}, {"batch_size", 4}}},
                  {"compare", {{"solvers", {{{"name", "euler"}}}}, {"nfe", {3, 5}}, {"reference", {{"steps", 50}}}}}};
  const fs::path out = d.tmp.path / "out";
  const CliResult r = run_cli("compare -c " + q(write_json(d.tmp.path / "n.json", j)) + " -o " + q(out));
  ASSERT_EQ(r.code, 0) << r.output;
  const json cells = json::parse(read_file(out / "compare.json"))["cells"];
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0]["nfe"], 3);
  EXPECT_TRUE(cells[0]["rmse"].is_null());
  EXPECT_TRUE(Contains(cells[0]["note"].get<std::string>(), "diverged: model"));
  EXPECT_TRUE(Contains(cells[0]["note"].get<std::string>(), "returned NaN or Inf"));
  EXPECT_EQ(cells[1]["nfe"], 5);
  EXPECT_GT(cells[1]["rmse"].get<double>(), 0.0);
  EXPECT_TRUE(Contains(r.output, "| euler | 3 | diverged |"));
  EXPECT_TRUE(Contains(r.output, "| euler | diverged | "));  // the summary
  EXPECT_TRUE(Contains(read_file(out / "compare.csv"), ",\"diverged: model"));
  EXPECT_FALSE(fs::exists(out / "cells" / "0-euler@3.json"));  // not kept: a re-run tries again
  EXPECT_TRUE(fs::exists(out / "error_vs_nfe.svg"));
}

TEST(Compare, AmedCellsTakeThePredictorOfTheirNfe) {
  CompareDir d;
  const std::string predictor = "models/fmnist_flow.amed-ipndm-{nfe}.pt";  // --set: against the working directory
  const std::string plan = "\"afs\": \"mean\", \"schedule\": {\"name\": \"vp_time\"}";
  const CliResult r = run_cli("compare -c " + q(repo() / "configs" / "fmnist_flow_amed.json") +
                              " --set sampling.num_samples=10 --set sampling.batch_size=10"
                              " --set compare.reference.steps=20 --set compare.reference.tolerance=1"
                              " --set 'compare.nfe=[3, 5]' --set 'compare.solvers=[{\"name\": \"amed+ipndm\", "
                              "\"predictor\": \"" + predictor + "\", \"last_interval\": \"learned\", " + plan + "}, {\"name\": \"ipndm\", " + plan +
                              "}]' -o " + q(d.tmp.path / "out"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json c = json::parse(read_file(d.tmp.path / "out" / "compare.json"));
  ASSERT_EQ(c["cells"].size(), 4u);
  EXPECT_EQ(c["cells"][0]["predictor"], (repo() / "models" / "fmnist_flow.amed-ipndm-3.pt").string());
  EXPECT_EQ(c["cells"][1]["predictor"], (repo() / "models" / "fmnist_flow.amed-ipndm-5.pt").string());
  for (const auto& cell : c["cells"]) {
    EXPECT_EQ(cell["nfe"], cell["target_nfe"]);
    EXPECT_TRUE(cell["frechet_distance"].is_number()) << cell.dump();  // the config names a feature model
  }
  EXPECT_TRUE(c["reference"]["frechet_distance"].is_number());
  EXPECT_TRUE(Contains(r.output, "| FD |"));
}

TEST(Compare, LabelsThatLookAlikeOnDiskKeepTheirOwnCells) {
  CompareDir d;
  json j = exact_compare_config();
  j["compare"]["solvers"] = {{{"name", "euler"}, {"label", "a b"}}, {{"name", "dpmpp2m"}, {"label", "a_b"}}};
  const fs::path cfg = write_json(d.tmp.path / "l.json", j);
  ASSERT_EQ(run_cli("compare -c " + q(cfg) + " -o " + q(d.tmp.path / "out")).code, 0);
  EXPECT_EQ(files_under(d.tmp.path / "out" / "cells").size(), 8u);
  const CliResult again = run_cli("compare -c " + q(cfg) + " -o " + q(d.tmp.path / "out"));
  ASSERT_EQ(again.code, 0) << again.output;
  size_t kept = 0;
  for (size_t at = again.output.find("kept from"); at != std::string::npos; at = again.output.find("kept from", at + 1))
    ++kept;
  EXPECT_EQ(kept, 4u) << again.output;
  const std::string csv = read_file(d.tmp.path / "out" / "compare.csv");
  EXPECT_TRUE(Contains(csv, "\na b,euler,4,"));
  EXPECT_TRUE(Contains(csv, "\na_b,dpmpp2m,4,"));
}

// compare.json's rows as written before rows were typed: every field, null when unset; the
// note only when there is one or the row was not measured; the predictor only when set.
TEST(CompareRow, ItsJsonHasTheKeysAndNullsOfEachState) {
  using diffode::CompareRow;
  CompareRow unreachable;
  unreachable.label = "heun";
  unreachable.target_nfe = 1;
  unreachable.status = CompareRow::Status::unreachable;
  unreachable.note = "solver.nfe 1 is not reachable";
  EXPECT_EQ(diffode::to_json(unreachable).dump(),
            R"({"afs":null,"frechet_distance":null,"label":"heun","max_err":null,"nfe":null,)"
            R"("note":"solver.nfe 1 is not reachable","psnr":null,"rmse":null,"schedule":null,"solver":null,"space":null,"steps":null,)"
            R"("target_nfe":1,"time_s":null})");

  CompareRow sampled = unreachable;
  sampled.status = CompareRow::Status::diverged;
  sampled.solver = "amed";
  sampled.nfe = 1;
  sampled.steps = 1;
  sampled.afs = true;
  sampled.time_s = 0.5;
  sampled.note = "diverged: model returned NaN or Inf";
  EXPECT_EQ(diffode::to_json(sampled).dump(),
            R"({"afs":true,"frechet_distance":null,"label":"heun","max_err":null,"nfe":1,)"
            R"("note":"diverged: model returned NaN or Inf","psnr":null,"rmse":null,"schedule":null,"solver":"amed","space":null,"steps":1,)"
            R"("target_nfe":1,"time_s":0.5})");

  sampled.status = CompareRow::Status::ok;
  sampled.note.clear();
  sampled.rmse = 0.25;
  sampled.max_err = 1.5;
  sampled.predictor = "p-1.pt";
  EXPECT_EQ(diffode::to_json(sampled).dump(),
            R"({"afs":true,"frechet_distance":null,"label":"heun","max_err":1.5,"nfe":1,"predictor":"p-1.pt",)"
            R"("psnr":null,"rmse":0.25,"schedule":null,"solver":"amed","space":null,"steps":1,"target_nfe":1,"time_s":0.5})");
}

TEST(Compare, AReferenceThatHasNotConvergedIsRefused) {
  CompareDir d;
  json j = exact_compare_config();
  j["compare"]["reference"] = {{"name", "euler"}, {"steps", 6}, {"tolerance", 1e-6}};
  const CliResult r = run_cli("compare -c " + q(write_json(d.tmp.path / "c.json", j)) + " -o " + q(d.tmp.path / "out"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/compare/reference: euler at 6 steps has not converged: it differs from 3 steps by RMSE"));
  EXPECT_TRUE(Contains(r.output, "raise compare.reference.steps"));
  expect_clean_error(r);
}

TEST(Compare, BadCompareSectionsAreNamed) {
  CompareDir d;
  auto with = [&](const std::function<void(json&)>& edit) {
    json j = exact_compare_config();
    edit(j);
    return write_json(d.tmp.path / "bad.json", j);
  };
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& j) { j.erase("compare"); }, "bad.json: /compare: missing: 'diffode compare' needs a compare section"},
      {[](json& j) { j["compare"]["solvers"] = json::array(); }, "/compare/solvers: is an empty list"},
      {[](json& j) { j["compare"]["solvers"] = {"euler"}; }, "/compare/solvers: expected a list of objects"},
      {[](json& j) { j["compare"]["nfe"] = {4, 0}; }, "/compare/nfe/1: must be in [1, 100000], got 0"},
      {[](json& j) { j["compare"]["nfe"] = json::array(); }, "/compare/nfe: is an empty list"},
      {[](json& j) { j["compare"]["solvers"][1]["name"] = "dpmpp"; }, "/compare/solvers/1/name: unknown solver 'dpmpp'"},
      {[](json& j) { j["compare"]["solvers"][1]["steps"] = 4; }, "/compare/solvers/1/steps: unknown key 'steps'"},
      {[](json& j) { j["compare"]["solvers"][1]["label"] = "euler"; }, "/compare/solvers/1: label 'euler' is used twice"},
      {[](json& j) { j["compare"]["reference"]["name"] = "amed"; }, "/compare/reference/name: the reference must be a training-free solver"},
      {[](json& j) { j["compare"]["reference"]["steps"] = 1; }, "/compare/reference/steps: must be in [2, 100000]"},
      {[](json& j) { j["compare"]["solvers"][0] = {{"name", "amed"}}; },
       "/compare/solvers: amed at NFE 4: " + (d.tmp.path / "bad.json").string() + ": /solver/predictor: solver 'amed' needs a step predictor file"},
  };
  for (const auto& [edit, message] : cases) {
    const CliResult r = run_cli("compare -c " + q(with(edit)) + " -o " + q(d.tmp.path / "out"));
    EXPECT_EQ(r.code, 2) << message << "\n" << r.output;
    EXPECT_TRUE(Contains(r.output, message));
    expect_clean_error(r);
  }
  EXPECT_FALSE(fs::exists(d.tmp.path / "out"));
  const CliResult shard = run_cli("compare -c " + q(with([](json&) {})) + " --shard 0/2 -o " + q(d.tmp.path / "out"));
  EXPECT_EQ(shard.code, 2) << shard.output;
  EXPECT_TRUE(Contains(shard.output, "'diffode compare' runs on one machine"));
}

}  // namespace

// Each compared solver may carry its own plan: a schedule, AFS and space, and a tuned grid per
// NFE ("{nfe}" in its path). Its cells are those of a sample run with that plan; a missing
// tuned file or one for another setting stops the comparison (exit 2) before anything is sampled.
TEST(Compare, EachSolverMayCarryItsOwnPlan) {
  CompareDir d;
  const fs::path tune_cfg = d.tmp.path / "tune.json";
  for (int nfe : {3, 4}) {
    write_json(tune_cfg, {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                          {"solver", {{"name", "dpmpp2m"}, {"nfe", nfe}}},
                          {"schedule", {{"name", "logsnr"}}},
                          {"tune", {{"points", 12}, {"trajectories", 32}, {"teacher_points", 1}}}});
    const CliResult t = run_cli("tune -c " + q(tune_cfg) + " -o " +
                                q(d.tmp.path / ("grids/dpmpp2m-" + std::to_string(nfe) + ".json")));
    ASSERT_EQ(t.code, 0) << t.output;
  }
  json j = {{"model", {{"path", model_path("gmm2d.pt").string()}}},
            {"schedule", {{"name", "logsnr"}}},
            {"sampling", {{"num_samples", 32}, {"batch_size", 32}}},
            {"compare",
             {{"solvers",
               {{{"name", "dpmpp2m"}},
                {{"name", "dpmpp2m"}, {"label", "dpmpp2m tuned"},
                 {"schedule", {{"name", "tuned"}, {"path", "grids/dpmpp2m-{nfe}.json"}}}},
                {{"name", "heun"}, {"label", "heun t"}, {"space", "time"}, {"afs", true},
                 {"schedule", {{"name", "polynomial"}, {"rho", 5}}}}}},
              {"nfe", {3, 4}},
              {"reference", {{"steps", 400}, {"tolerance", 0.02}}}}}};
  const fs::path cfg = write_json(d.tmp.path / "plans.json", j);
  const CliResult r = run_cli("compare -c " + q(cfg) + " -o " + q(d.tmp.path / "out"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json c = json::parse(read_file(d.tmp.path / "out" / "compare.json"));
  ASSERT_EQ(c["cells"].size(), 6u);
  EXPECT_EQ(c["cells"][0]["schedule"], "logsnr");
  EXPECT_EQ(c["cells"][2]["schedule"], "tuned");
  EXPECT_EQ(c["cells"][4]["schedule"], "polynomial");
  EXPECT_EQ(c["cells"][4]["space"], "time");
  EXPECT_EQ(c["cells"][4]["afs"], true);
  // the tuned cell at NFE 4 is a sample run on the grid tuned for NFE 4
  const fs::path use = write_json(d.tmp.path / "use.json",
                                  {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                                   {"solver", {{"name", "dpmpp2m"}, {"nfe", 4}}},
                                   {"schedule", {{"name", "tuned"}, {"path", "grids/dpmpp2m-4.json"}}},
                                   {"sampling", {{"num_samples", 32}, {"batch_size", 32}}}});
  const CliResult s = run_cli("sample -c " + q(use) + " -o " + q(d.tmp.path / "run"));
  ASSERT_EQ(s.code, 0) << s.output;
  const std::vector<float> shown = npy_values(d.tmp.path / "out" / "cells" / "1-dpmpp2m_tuned@4.npy");
  const std::vector<float> sampled = npy_values(d.tmp.path / "run" / "samples.npy");
  ASSERT_FALSE(shown.empty());
  for (size_t i = 0; i < shown.size(); ++i) ASSERT_EQ(shown[i], sampled[i]) << i;

  // a compared solver whose tuned grid for a cell is missing: the cell's pointer, exit 2
  j["compare"]["nfe"] = json::array({3, 5});
  const CliResult bad = run_cli("compare -c " + q(write_json(d.tmp.path / "bad.json", j)) + " -o " + q(d.tmp.path / "out2"));
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "dpmpp2m tuned at NFE 5"));
  EXPECT_TRUE(Contains(bad.output, "/compare/solvers/1/schedule/path"));
  EXPECT_FALSE(fs::exists(d.tmp.path / "out2" / "compare.json"));
}

// ---------------------------------------------------------------- cached records are checked (issue 25)

namespace {

json gauss_compare_config(int seed) {
  return {{"model", {{"path", model_path("gauss.pt").string()}}},
          {"sampling", {{"num_samples", 8}, {"batch_size", 8}, {"seed", seed}}},
          {"compare", {{"solvers", {{{"name", "euler"}}}}, {"nfe", {4}}, {"reference", {{"steps", 40}, {"tolerance", 1}}}}}};
}

}  // namespace

// A cell in cells/ edited after it was written is not reused: it is sampled again.
TEST(CompareCache, AnEditedCellIsSampledAgain) {
  CompareDir d;
  const fs::path cfg = write_json(d.tmp.path / "cmp.json", gauss_compare_config(0));
  const fs::path out = d.tmp.path / "out";
  ASSERT_EQ(run_cli("compare -c " + q(cfg) + " -o " + q(out)).code, 0);
  const json first = json::parse(read_file(out / "compare.json"));
  const fs::path cell = out / "cells" / "0-euler@4.json";
  json edited = json::parse(read_file(cell));
  edited["result"]["rmse"] = -5.0;
  write_json(cell, edited);
  const CliResult r = run_cli("compare -c " + q(cfg) + " -o " + q(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(Contains(r.output, "kept from"));
  const json again = json::parse(read_file(out / "compare.json"));
  EXPECT_EQ(again["cells"][0]["rmse"], first["cells"][0]["rmse"]);
  // Unedited, it is kept.
  EXPECT_TRUE(Contains(run_cli("compare -c " + q(cfg) + " -o " + q(out)).output, "euler at NFE 4: kept from"));
}

// A cached reference whose samples were swapped with another key's is computed again.
TEST(CompareCache, AReferenceSwappedBetweenKeysIsComputedAgain) {
  CompareDir d;
  const fs::path a = write_json(d.tmp.path / "a.json", gauss_compare_config(0));
  const fs::path b = write_json(d.tmp.path / "b.json", gauss_compare_config(100));
  ASSERT_EQ(run_cli("compare -c " + q(a) + " -o " + q(d.tmp.path / "a")).code, 0);
  ASSERT_EQ(run_cli("compare -c " + q(b) + " -o " + q(d.tmp.path / "b")).code, 0);
  const json rmse_a = json::parse(read_file(d.tmp.path / "a" / "compare.json"))["cells"][0]["rmse"];
  std::vector<fs::path> npys;
  for (const auto& e : fs::directory_iterator(d.cache()))
    if (e.path().extension() == ".npy") npys.push_back(e.path());
  ASSERT_EQ(npys.size(), 2u);
  fs::rename(npys[0], d.cache() / "swap");
  fs::rename(npys[1], npys[0]);
  fs::rename(d.cache() / "swap", npys[1]);
  fs::remove_all(d.tmp.path / "a" / "cells");  // the cells are measured again, against the reference
  const CliResult r = run_cli("compare -c " + q(a) + " -o " + q(d.tmp.path / "a"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(Contains(r.output, "reference from the cache"));
  EXPECT_EQ(json::parse(read_file(d.tmp.path / "a" / "compare.json"))["cells"][0]["rmse"], rmse_a);
}

// A user's compare.csv in the output folder is not written over.
TEST(CompareCache, AUsersCompareCsvIsNotWrittenOver) {
  CompareDir d;
  const fs::path cfg = write_json(d.tmp.path / "cmp.json", gauss_compare_config(0));
  const fs::path out = d.tmp.path / "out";
  fs::create_directories(out);
  std::ofstream(out / "compare.csv") << "mine\n";
  const CliResult r = run_cli("compare -c " + q(cfg) + " -o " + q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "compare.csv was not written by diffode"));
  EXPECT_EQ(read_file(out / "compare.csv"), "mine\n");
}

// ---------------------------------------------------------------- the plot

namespace {

// 15 series in one decade and one diverging (docs/amed/error_vs_nfe.png's shape), as
// series 1 like amed+ipndm there; the others between 0.01 and 0.1.
std::vector<diffode::PlotSeries> bulk_and_outlier(size_t n) {
  std::vector<diffode::PlotSeries> out;
  for (size_t k = 0; k < n; ++k) {
    diffode::PlotSeries s{"solver " + std::to_string(k) + (k == 5 ? " with a long label, o2 tuned" : ""), {}, {}};
    for (double nfe : {3.0, 5.0, 7.0, 9.0}) {
      s.x.push_back(nfe);
      s.y.push_back(k == 1 ? 2.6 * std::pow(nfe / 3, -1.6) : (0.031 + 0.0035 * static_cast<double>(k % 19)) * 3 / nfe);
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

// No two series share colour, marker, line style and width, however many there are; the
// series the issue confused (1 and 11: the same orange square) differ in marker and line.
TEST(Plot, EverySeriesHasAStyleOfItsOwn) {
  for (size_t n : {40u, 1200u}) {
    const std::vector<diffode::SeriesStyle> styles = diffode::series_styles(n);
    ASSERT_EQ(styles.size(), n);
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j) ASSERT_FALSE(styles[i] == styles[j]) << i << " and " << j << " of " << n;
    for (size_t i = 0; i + 1 < n; ++i) {
      EXPECT_NE(styles[i].colour, styles[i + 1].colour);
      EXPECT_NE(styles[i].marker, styles[i + 1].marker);
    }
  }
  const auto s = diffode::series_styles(16);
  EXPECT_EQ(s[1].colour, s[11].colour);
  EXPECT_NE(s[1].marker, s[11].marker);
  EXPECT_NE(s[1].line, s[11].line);
}

// A diverging series does not squash the others: the y axis spans the bulk's decades, and
// the outlier is drawn clipped at the top and says so in the legend.
TEST(Plot, AnOffScaleSeriesIsClippedAndMarked) {
  std::vector<diffode::PlotSeries> series = bulk_and_outlier(16);
  const diffode::YRange r = diffode::choose_y_range(series);
  EXPECT_EQ(r.lo, -2);
  EXPECT_EQ(r.hi, -1);  // the bulk lies in [0.01, 0.1]; the outlier's 2.6 would make it [0.01, 10]
  for (size_t k = 0; k < series.size(); ++k) {
    EXPECT_EQ(r.off_scale[k], k == 1) << k;
    EXPECT_EQ(r.labels[k], series[k].label + (k == 1 ? " (off scale, max 2.6)" : "")) << k;
  }
  // High values that are half the data are the bulk, not an outlier; a lone series sets its range.
  for (size_t k = 0; k < 8; ++k)
    for (double& y : series[k].y) y *= 100;
  EXPECT_EQ(diffode::choose_y_range(series).hi, 1);
  EXPECT_EQ(diffode::choose_y_range({series[1]}).off_scale, std::vector<bool>{false});
  // A value that is not finite is off scale, never dropped without a word.
  std::vector<diffode::PlotSeries> inf = bulk_and_outlier(4);
  inf[1].y = {0.1, std::numeric_limits<double>::infinity(), 0.05, 0.02};
  const diffode::YRange ri = diffode::choose_y_range(inf);
  EXPECT_TRUE(ri.off_scale[1]);
  EXPECT_EQ(ri.labels[1], "solver 1 (off scale, max inf)");
}

// 40 series and an outlier render (PNG and SVG). DIFFODE_TEST_KEEP_PLOT=DIR keeps the files
// in DIR, to look at them.
TEST(Plot, ManySeriesAndAnOutlierRender) {
  TempDir tmp;
  const char* keep = std::getenv("DIFFODE_TEST_KEEP_PLOT");
  const fs::path dir = keep ? fs::path(keep) : tmp.path;
  for (size_t n : {16u, 40u}) {
    const std::string name = "plot" + std::to_string(n);
    diffode::plot_loglog(bulk_and_outlier(n), "NFE", "RMSE", "16+ series and an outlier", dir / (name + ".svg"),
                         dir / (name + ".png"));
    EXPECT_GT(fs::file_size(dir / (name + ".png")), 1000u);
    EXPECT_GT(fs::file_size(dir / (name + ".svg")), 1000u);
  }
}
