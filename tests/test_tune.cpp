// `diffode tune`: the dynamic programme, and the search end to end on gmm2d.pt: the grid file,
// its use through schedule "tuned", and the refusals (another model, solver or NFE; a
// schedule that is not a formula; an output diffode did not write).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "diffode/core/error.hpp"
#include "diffode/core/process.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/runs/tune.hpp"
#include "test_cli_util.hpp"

using namespace diffode;
using namespace diffode::test::cli;

namespace {

std::vector<std::vector<double>> costs(int k, double (*c)(int, int)) {
  std::vector<std::vector<double>> m(static_cast<size_t>(k) + 1, std::vector<double>(static_cast<size_t>(k) + 1, 0));
  for (int i = 0; i <= k; ++i)
    for (int j = i + 1; j <= k; ++j) m[static_cast<size_t>(i)][static_cast<size_t>(j)] = c(i, j);
  return m;
}

// The path of least cost, by trying every path (k small).
double brute_force(const std::vector<std::vector<double>>& m, int steps, int from, int k) {
  if (steps == 0) return from == k ? 0.0 : INFINITY;
  double best = INFINITY;
  for (int j = from + 1; j <= k; ++j)
    best = std::min(best, m[static_cast<size_t>(from)][static_cast<size_t>(j)] + brute_force(m, steps - 1, j, k));
  return best;
}

struct Tuned {
  TempDir tmp;
  fs::path config, grid;
  CliResult tune;
  Tuned() {
    ::setenv("DIFFODE_CACHE", (tmp.path / "cache").c_str(), 1);
    config = write_json(tmp.path / "c.json", {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                                              {"solver", {{"name", "ipndm"}, {"nfe", 4}}},
                                              {"schedule", {{"name", "logsnr"}}},
                                              {"sampling", {{"num_samples", 64}, {"batch_size", 64}}},
                                              {"tune", {{"points", 24}, {"trajectories", 96}, {"teacher_points", 1}, {"refine", 48}}}});
    grid = tmp.path / "tuned.json";
    tune = run_cli("tune -c " + q(config) + " -o " + q(grid));
  }
};

}  // namespace

TEST(Tune, CheapestPathIsTheBestOfAllPaths) {
  // Convex costs in the step length give equal steps.
  const auto even = cheapest_path(costs(12, [](int i, int j) { return double((j - i) * (j - i)); }), 4);
  EXPECT_EQ(even, (std::vector<int>{0, 3, 6, 9, 12}));
  // Costs that make some points cheap to reach: against every path tried by brute force.
  const auto m = costs(9, [](int i, int j) { return std::fabs(std::sin(3.0 * i + j)) + 0.1 * (j - i) * (j - i); });
  for (int steps = 1; steps <= 9; ++steps) {
    const auto p = cheapest_path(m, steps);
    ASSERT_EQ(p.size(), static_cast<size_t>(steps) + 1);
    EXPECT_EQ(p.front(), 0);
    EXPECT_EQ(p.back(), 9);
    double c = 0;
    for (size_t n = 1; n < p.size(); ++n) {
      EXPECT_LT(p[n - 1], p[n]);
      c += m[static_cast<size_t>(p[n - 1])][static_cast<size_t>(p[n])];
    }
    EXPECT_NEAR(c, brute_force(m, steps, 0, 9), 1e-12) << steps;
  }
  EXPECT_THROW(cheapest_path(m, 10), InputError);
}

TEST(Tune, WritesAGridThatSamplesAndBeatsNothingWorseThanItsSchedule) {
  Tuned t;
  ASSERT_EQ(t.tune.code, 0) << t.tune.output;
  const json rec = json::parse(read_file(t.grid));
  EXPECT_EQ(rec["kind"], "diffode_tuned_grid");
  EXPECT_EQ(rec["solver"], "ipndm");
  EXPECT_EQ(rec["nfe"], 4);
  EXPECT_EQ(rec["sigmas"].size(), 5u);
  // Its summed step error is at most the schedule's own 4-step grid (among the candidates: 24 = 4·6).
  EXPECT_LE(rec["cost"]["tuned"].get<double>(), rec["cost"]["schedule_own_grid"].get<double>() + 1e-12);
  EXPECT_GT(rec["cost"]["tuned"].get<double>(), 0);
  // Used by a config: the run's grid is the file's.
  const fs::path use = write_json(t.tmp.path / "use.json",
                                  {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                                   {"solver", {{"name", "ipndm"}, {"nfe", 4}}},
                                   {"schedule", {{"name", "tuned"}, {"path", "tuned.json"}}},
                                   {"sampling", {{"num_samples", 16}, {"batch_size", 16}}}});
  const CliResult r = run_cli("sample -c " + q(use) + " -o " + q(t.tmp.path / "run"));
  ASSERT_EQ(r.code, 0) << r.output;
  const json m = json::parse(read_file(t.tmp.path / "run" / "manifest.json"));
  EXPECT_EQ(m["run"]["schedule"]["sigmas"], rec["sigmas"]);
  // The refinement: the grid lies on the 4x lattice and its end error, measured here by
  // sampling the refinement's seeds with it against a fine heun solution, is what it says.
  const json& refine = rec["refine"];
  ASSERT_TRUE(refine.is_object()) << rec.dump();
  EXPECT_EQ(refine["lattice_points"], 96);
  EXPECT_EQ(refine["indices"].front(), 0);
  EXPECT_EQ(refine["indices"].back(), 96);
  const double refined = refine["end_rmse"]["refined"].get<double>();
  const double dp = refine["end_rmse"]["dp_grid"].get<double>();
  auto seeds_run = [&](const fs::path& config, const std::string& dir, const std::string& sets) {
    const CliResult s = run_cli("sample -c " + q(config) + " --set sampling.seed=2000000000 --set sampling.num_samples=48" +
                                " --set sampling.batch_size=48" + sets + " -o " + q(t.tmp.path / dir));
    EXPECT_EQ(s.code, 0) << s.output;
    return read_npy(t.tmp.path / dir / "samples.npy").data;
  };
  auto rmse = [](const std::vector<float>& x, const std::vector<float>& y) {
    EXPECT_EQ(x.size(), y.size());
    double sq = 0;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) sq += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    return std::sqrt(sq / static_cast<double>(x.size()));
  };
  const std::vector<float> x = seeds_run(use, "tuned-seeds", "");
  const std::vector<float> exact =
      seeds_run(t.config, "fine-seeds", " --set solver.name=dpmpp3m --set solver.nfe=300");
  EXPECT_NEAR(rmse(x, exact), refined, 0.1 * refined);
  // Both recorded end errors recomputed here: the teacher's ends (dpmpp3m on the 24-point
  // logsnr candidates with one more point in each interval) sampled from the same seeds, and
  // the DP's grid (the candidates at the recorded indices) and the file's grid sampled
  // against them. The refined grid is on the 96-point lattice and strictly better: here the
  // DP's grid is not the best for ipndm (measured end RMSE 0.2188, refined 0.2144).
  const diffode::SigmaRange range{0.002, 80.0, diffode::Process::from_json({{"type", "flow"}}, "t")};  // gmm2d
  const diffode::ScheduleSpec logsnr = diffode::test::schedule("logsnr");
  const diffode::Grid candidates = diffode::make_grid(logsnr, 24, range);
  diffode::Grid dp_grid, lattice_grid;
  for (const auto& i : rec["candidates"]["indices"]) dp_grid.push_back(candidates.at(i.get<size_t>()));
  const diffode::Grid lattice = diffode::make_grid(logsnr, 96, range);
  for (const auto& i : refine["indices"]) lattice_grid.push_back(lattice.at(i.get<size_t>()));
  ASSERT_EQ(rec["sigmas"].size(), lattice_grid.size());
  for (size_t i = 0; i < lattice_grid.size(); ++i)
    EXPECT_NEAR(rec["sigmas"][i].get<double>(), lattice_grid[i], 1e-9 * lattice_grid[i]) << i;
  EXPECT_NE(dp_grid, lattice_grid);  // the refinement moved a point
  ASSERT_EQ(rec["teacher"]["name"], "dpmpp3m");
  ASSERT_EQ(rec["teacher"]["space"], "sigma");
  ASSERT_EQ(rec["afs"], false);
  auto custom = [&](const std::string& name, const std::string& solver, const diffode::Grid& sigmas, const json& nfe) {
    json solver_json = {{"name", solver}, {"afs", false}};
    if (!nfe.is_null()) solver_json["nfe"] = nfe;
    return write_json(t.tmp.path / (name + ".json"), {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                                                      {"solver", solver_json},
                                                      {"schedule", {{"name", "custom"}, {"sigmas", sigmas}}}});
  };
  const std::vector<float> teacher = seeds_run(
      custom("teacher", "dpmpp3m", diffode::refine_grid(candidates, rec["teacher"]["points"].get<int>(), logsnr, range),
             nullptr),
      "teacher-seeds", "");
  const double dp_measured = rmse(seeds_run(custom("dp", "ipndm", dp_grid, 4), "dp-seeds", ""), teacher);
  const double refined_measured = rmse(seeds_run(custom("refined", "ipndm", lattice_grid, 4), "refined-seeds", ""), teacher);
  EXPECT_NEAR(dp_measured, dp, 1e-5 * dp);
  EXPECT_NEAR(refined_measured, refined, 1e-5 * refined);
  EXPECT_LT(refined_measured, dp_measured - 1e-3);
  // A second search with the same teacher reads the costs from the cache.
  const CliResult again = run_cli("tune -c " + q(t.config) + " -o " + q(t.tmp.path / "again.json"));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(Contains(again.output, "from the cache"));
  EXPECT_EQ(json::parse(read_file(t.tmp.path / "again.json"))["sigmas"], rec["sigmas"]);
}

TEST(Tune, AGridForAnotherSolverNfeOrModelIsRefused) {
  Tuned t;
  ASSERT_EQ(t.tune.code, 0) << t.tune.output;
  auto use = [&](const std::string& model, const std::string& solver, int nfe) {
    const fs::path c = write_json(t.tmp.path / "use.json",
                                  {{"model", {{"path", model_path(model).string()}}},
                                   {"solver", {{"name", solver}, {"nfe", nfe}}},
                                   {"schedule", {{"name", "tuned"}, {"path", t.grid.string()}}},
                                   {"sampling", {{"num_samples", 4}, {"batch_size", 4}}}});
    return run_cli("sample -c " + q(c) + " -o " + q(t.tmp.path / "out"));
  };
  CliResult r = use("gmm2d.pt", "euler", 4);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/schedule/path"));
  EXPECT_TRUE(Contains(r.output, "solver \"ipndm\" (this run: \"euler\")"));
  r = use("gmm2d.pt", "heun", 7);  // 4 steps: heun takes 7 evaluations on them
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "NFE 4 (this run: 7)"));
  {  // the same solver with another order cap
    const fs::path c = write_json(t.tmp.path / "order.json",
                                  {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                                   {"solver", {{"name", "ipndm"}, {"nfe", 4}, {"max_order", 2}}},
                                   {"schedule", {{"name", "tuned"}, {"path", t.grid.string()}}},
                                   {"sampling", {{"num_samples", 4}, {"batch_size", 4}}}});
    r = run_cli("sample -c " + q(c) + " -o " + q(t.tmp.path / "out"));
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_TRUE(Contains(r.output, "max_order 4 (this run: 2)")) << r.output;
  }
  r = use("gmm2d_cond.pt", "ipndm", 4);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "model sha256"));
  EXPECT_FALSE(fs::exists(t.tmp.path / "out"));
}

TEST(Tune, BadInputIsRefusedAndWritesNothing) {
  TempDir tmp;
  ::setenv("DIFFODE_CACHE", (tmp.path / "cache").c_str(), 1);
  auto cfg = [&](const json& solver, const json& schedule, const json& tune) {
    return write_json(tmp.path / "c.json", {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                                            {"solver", solver},
                                            {"schedule", schedule},
                                            {"tune", tune}});
  };
  const fs::path out = tmp.path / "g.json";
  // heun takes 2N evaluations to sigma_min > 0 (2N - 1 with AFS): never 5 without AFS
  CliResult r = run_cli("tune -c " +
                        q(cfg({{"name", "heun"}, {"nfe", 5}, {"afs", false}}, {{"name", "logsnr"}}, json::object())) +
                        " -o " + q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/solver/nfe"));
  r = run_cli("tune -c " + q(cfg({{"name", "euler"}, {"nfe", 30}}, {{"name", "logsnr"}}, {{"points", 20}})) + " -o " +
              q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/tune/points"));
  r = run_cli("tune -c " + q(cfg({{"name", "euler"}, {"nfe", 3}}, {{"name", "logsnr"}}, {{"trajectories", 8}, {"refine", 9}})) +
              " -o " + q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/tune/refine"));
  r = run_cli("tune -c " +
              q(cfg({{"name", "euler"}, {"nfe", 3}}, {{"name", "custom"}, {"sigmas", {80, 1, 0.1, 0.01}}}, json::object())) +
              " -o " + q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/schedule/name"));
  EXPECT_FALSE(fs::exists(out));
  // Never over a file diffode did not write.
  write_json(out, {{"mine", true}});
  r = run_cli("tune -c " + q(cfg({{"name", "euler"}, {"nfe", 3}}, {{"name", "logsnr"}}, {{"points", 6}})) + " -o " +
              q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "is not a tuned grid diffode wrote"));
  EXPECT_EQ(json::parse(read_file(out)), json({{"mine", true}}));
  // A tuned schedule whose file is not one.
  const fs::path use = write_json(tmp.path / "u.json", {{"model", {{"path", model_path("gmm2d.pt").string()}}},
                                                        {"schedule", {{"name", "tuned"}, {"path", out.string()}}}});
  r = run_cli("sample -c " + q(use) + " -o " + q(tmp.path / "run"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/schedule/path"));
  EXPECT_FALSE(fs::exists(tmp.path / "run"));
}

// The plan keys' refusals through the command line: exit 2, the key named, nothing written.
TEST(Plans, SpaceAndAfsMeanWhereUndefinedAreRefused) {
  TempDir tmp;
  const fs::path flow = repo() / "configs" / "fmnist_flow.json";  // sigma_max = inf
  const fs::path out = tmp.path / "run";
  CliResult r = run_cli("sample -c " + q(flow) + " --set solver.afs=mean -o " + q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/solver/afs")) << r.output;
  EXPECT_TRUE(Contains(r.output, "sigma_max")) << r.output;
  r = run_cli("sample -c " + q(flow) + " --set solver.name=dpmpp2m --set solver.space=time -o " + q(out));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/solver/space")) << r.output;
  EXPECT_TRUE(Contains(r.output, "dpmpp2m")) << r.output;
  r = run_cli("tune -c " + q(flow) + " --set solver.afs=mean --set solver.name=euler --set solver.nfe=5 -o " + q(tmp.path / "g.json"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "/solver/afs")) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(tmp.path / "g.json"));
}

// The refinement's lattice is the schedule at 4K steps on the schedule's own σ range (the
// candidates' and the plan's): with schedule.sigma_min ending the grid inside the model's
// range (0.002 on a model reaching 0) it holds the candidates (before: std::logic_error,
// "does not hold its candidates"), and the tuned grid ends at schedule.sigma_min.
TEST(Tune, RefinesOnTheSchedulesSigmaRange) {
  TempDir tmp;
  ::setenv("DIFFODE_CACHE", (tmp.path / "cache").c_str(), 1);
  const diffode::Config cfg = diffode::parse_config(
      {{"model", {{"path", model_path("gmm2d.pt").string()}, {"sigma_min", 0}}},
       {"solver", {{"name", "euler"}, {"nfe", 3}}},
       {"schedule", {{"name", "polynomial"}, {"sigma_min", 0.002}}},
       {"sampling", {{"batch_size", 32}}},
       {"tune", {{"points", 6}, {"trajectories", 32}, {"teacher_points", 1}, {"refine", 16}}}},
      "c.json", tmp.path);
  json rec;
  ASSERT_NO_THROW(rec = run_tune(cfg, tmp.path / "g.json"));
  EXPECT_EQ(rec["sigmas"].front(), 80.0);
  EXPECT_EQ(rec["sigmas"].back(), 0.002);
  ASSERT_TRUE(rec["refine"].is_object()) << rec.dump();
  EXPECT_EQ(rec["refine"]["lattice_points"], 24);
  EXPECT_EQ(rec["refine"]["indices"].back(), 24);
  EXPECT_EQ(json::parse(read_file(tmp.path / "g.json"))["sigmas"], rec["sigmas"]);
}
