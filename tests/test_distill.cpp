// `diffode distill` (DESIGN.md §4): an AMED predictor trained against a teacher on gmm2d.pt.
// The losses it records are recomputed here from the predictor file and teacher trajectories
// made here; it beats the untrained midpoint (r = ½), is deterministic for a seed, continues
// where it stopped (losses, iterations and seconds), learns a last interval into 0, and
// refuses what it cannot distill, never writing over a file that is not its predictor. The
// teacher's points are refine_grid's, geometric inside (the shipped predictors' too).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "diffode/core/amed_predictor.hpp"
#include "diffode/core/denoiser.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/integrate.hpp"
#include "diffode/core/model.hpp"
#include "diffode/core/noise.hpp"
#include "diffode/core/process.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/runs/distill.hpp"
#include "diffode/runs/sampler.hpp"
#include "test_util.hpp"

using namespace diffode;
using nlohmann::json;
using test::error_of;
using test::model_path;
using test::TempDir;
namespace fs = std::filesystem;

namespace {


double max_diff(const Tensor& a, const Tensor& b) { return (a - b).abs().max().item<double>(); }

Config gmm_config(const std::string& solver, const fs::path& cache, int64_t iterations) {
  ::setenv("DIFFODE_CACHE", cache.c_str(), 1);
  json j = {{"model", {{"path", model_path("gmm2d.pt").string()}, {"threads", 1}}},
            {"solver", {{"name", solver}, {"nfe", 5}}},
            {"schedule", {{"name", "logsnr"}}},
            {"distill", {{"trajectories", 512}, {"validation", 256}, {"batch_size", 128}, {"iterations", iterations},
                         {"eval_every", 10}}}};
  return parse_config(j, "gmm.json", ".");
}

// Whether two predictor files hold the same parameters, bit for bit.
bool same_parameters(const fs::path& a, const fs::path& b) {
  const std::vector<Tensor> pa = AmedPredictor::load(a).parameters(), pb = AmedPredictor::load(b).parameters();
  if (pa.size() != pb.size()) return false;
  for (size_t k = 0; k < pa.size(); ++k)
    if (!at::equal(pa[k], pb[k])) return false;
  return true;
}

// A predictor's metadata less the time its training took, which two equal runs differ in.
json without_seconds(json m) {
  EXPECT_EQ(m["training"].erase("seconds"), 1u);
  return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The distillation's validation loss, recomputed here without the library's trainer: the
// teacher (cfg.distill.teacher with teacher_points geometric points inside each interval)
// from the validation seeds, its states at the student's grid points rounded to float32 as
// a cache holds them, and the student's weighted mean squared distance to them, stepping
// from each teacher point (single-step solvers) or along its own trajectory (multistep).
class ValidationLoss {
 public:
  explicit ValidationLoss(const Config& cfg) : cfg_(cfg), model_(load_run_model(cfg)), plan_(plan_run(cfg, model_)) {
    const Grid& g = plan_.grid;
    const int m = cfg.distill.teacher_points;
    Grid fine;  // gmm2d on logsnr: every interval between positive sigmas
    for (size_t i = 0; i + 1 < g.size(); ++i) {
      EXPECT_TRUE(std::isfinite(g[i]) && g[i + 1] > 0) << "interval " << i;
      for (int k = 0; k <= m; ++k) fine.push_back(g[i] * std::pow(g[i + 1] / g[i], static_cast<double>(k) / (m + 1)));
    }
    fine.push_back(g.back());
    const DistillConfig& dc = cfg.distill;
    const auto dtype = cfg.solver.state_dtype();
    ModelDenoiser den(model_, dtype);
    for (int64_t first = 0; first < dc.validation; first += dc.batch_size) {  // batches as the trainer's
      const int64_t count = std::min(dc.batch_size, dc.validation - first);
      const Tensor eps = make_noise(dc.seed, dc.trajectories + first, count, model_.meta().sample_shape).to(dtype);
      std::vector<Tensor> states = {eps * g.front()};
      integrate(*dc.teacher, den, eps, fine, {}, false, [&](int j, const Tensor& x) {
        if ((j + 1) % (m + 1) == 0) states.push_back(x.to(at::kFloat).to(dtype));
      });
      states.front() = states.front().to(at::kFloat).to(dtype);
      EXPECT_EQ(states.size(), g.size());
      batches_.push_back(std::move(states));
    }
  }

  const StepPlan& plan() const { return plan_; }

  // The loss of the student with step predictor `p` over the validation trajectories.
  double operator()(const StepPredictor& p) const {
    const DistillConfig& dc = cfg_.distill;
    const SolverInfo& student = cfg_.solver.info();
    const Grid& g = plan_.grid;
    const int n = plan_.steps;
    EXPECT_EQ(plan_.space, Space::sigma);
    ModelDenoiser den(model_, cfg_.solver.state_dtype());
    at::NoGradGuard no_grad;
    double sum = 0;
    int64_t rows = 0;
    for (const auto& y : batches_) {
      double loss = 0, weights = 0;
      auto add = [&](const Tensor& x, int j) {
        const double sigma = g[static_cast<size_t>(j)];
        const double w = (dc.normalize ? 1.0 / (1.0 + sigma * sigma) : 1.0) * (j == n ? dc.last_weight : 1.0);
        loss += (x - y[static_cast<size_t>(j)]).pow(2).mean().item<double>() * w;
        weights += w;
      };
      SolverOptions opt{plan_.afs, cfg_.solver.max_order, &p, nullptr, {}, cfg_.solver.learned_last()};
      if (student.multistep) {
        solve(student, den, y[0], g, opt, [&](int j, const Tensor& x) { add(x, j + 1); });
      } else {
        for (int i = 0; i < n; ++i) {
          SolverOptions one = opt;
          one.afs = opt.afs && i == 0;
          add(solve(student, den, y[static_cast<size_t>(i)], {g[static_cast<size_t>(i)], g[static_cast<size_t>(i) + 1]},
                    one, [](int, const Tensor&) {}),
              i + 1);
        }
      }
      const int64_t count = y[0].size(0);
      sum += loss / weights * static_cast<double>(count);
      rows += count;
    }
    return sum / static_cast<double>(rows);
  }

 private:
  const Config& cfg_;
  Model model_;
  StepPlan plan_;
  std::vector<std::vector<Tensor>> batches_;  // per batch: the teacher's state at each grid point
};

// The recomputed loss of the predictor file at `path`.
double loss_of(const ValidationLoss& loss, const fs::path& path) { return loss(AmedPredictor::load(path)); }

}  // namespace

TEST(AmedDistill, LowersTheErrorToTheTeacherOnGmm2d) {
  TempDir tmp;
  for (const char* solver : {"amed", "amed+ipndm"}) {
    const fs::path out = tmp.path / (std::string(solver) + ".pt");
    const json m = run_distill(gmm_config(solver, tmp.path / "cache", 60), out);
    const double before = m["training"]["midpoint_validation_loss"], after = m["training"]["best_validation_loss"];
    EXPECT_LT(after, 0.5 * before) << solver << " " << m.dump();
    EXPECT_EQ(m["solver"], solver);
    EXPECT_EQ(m["training"]["iterations_run"], 60);

    // sampling with it uses it: the result differs from the untrained midpoint's
    Config cfg = gmm_config(solver, tmp.path / "cache", 60);
    const Model model = Model::load({cfg.model.path});
    const StepPlan plan = plan_run(cfg, model);
    const std::optional<AmedPredictor> p = load_run_predictor(
        parse_config({{"model", {{"path", cfg.model.path.string()}}},
                      {"solver", {{"name", solver}, {"nfe", 5}, {"predictor", out.string()}}},
                      {"schedule", {{"name", "logsnr"}}}},
                     "gmm.json", "."),
        model, plan);
    ASSERT_TRUE(p.has_value());
    const FixedStep midpoint;
    const Tensor eps = make_noise(0, 0, 256, {2}).to(at::kDouble);
    ModelDenoiser den(model, at::kDouble);
    const Tensor a = integrate(find_solver(solver), den, eps, plan.grid, {plan.afs, 0, &*p}, false);
    const Tensor b = integrate(find_solver(solver), den, eps, plan.grid, {plan.afs, 0, &midpoint}, false);
    EXPECT_GT(max_diff(a, b), 1e-3) << solver;
  }
}

// The two losses a predictor records are what its file and the untrained midpoint (r = ½,
// c = a = 1) give on the validation trajectories, recomputed here, and the file's is lower.
TEST(AmedDistill, RecordedLossesAreThoseOfTheFileAndTheMidpointRecomputed) {
  TempDir tmp;
  for (const char* solver : {"amed", "amed+ipndm"}) {  // single-step, multistep
    const Config cfg = gmm_config(solver, tmp.path / "cache", 40);
    const fs::path out = tmp.path / (std::string(solver) + ".pt");
    const json t = run_distill(cfg, out)["training"];
    const ValidationLoss loss(cfg);
    EXPECT_EQ(loss.plan().steps, 3);  // 5 NFE: 3 intervals, AFS
    EXPECT_TRUE(loss.plan().afs);
    const double midpoint = loss(FixedStep(0.5)), trained = loss_of(loss, out);
    const double rec_mid = t["midpoint_validation_loss"], rec_best = t["best_validation_loss"];
    EXPECT_NEAR(rec_mid, midpoint, 1e-6 * midpoint) << solver;
    EXPECT_NEAR(rec_best, trained, 1e-6 * trained) << solver;
    EXPECT_LT(trained, 0.5 * midpoint) << solver;
  }
}

TEST(AmedDistill, DeterministicForASeed) {
  TempDir tmp;
  const Config cfg = gmm_config("amed+dpm2", tmp.path / "cache", 30);
  const json a = run_distill(cfg, tmp.path / "a.pt");
  const json b = run_distill(cfg, tmp.path / "b.pt");  // from the teacher trajectories a cached
  // trained (not the midpoint it starts from), and the same bit for bit
  const json& ta = a["training"];
  EXPECT_LT(ta["best_validation_loss"].get<double>(), ta["midpoint_validation_loss"].get<double>());
  EXPECT_TRUE(same_parameters(tmp.path / "a.pt", tmp.path / "b.pt"));
  EXPECT_EQ(without_seconds(a), without_seconds(b));

  // another seed: other teacher trajectories, initialisation and batches
  Config other = cfg;
  other.distill.seed += 1;
  const json c = run_distill(other, tmp.path / "c.pt");
  EXPECT_FALSE(same_parameters(tmp.path / "a.pt", tmp.path / "c.pt"));
  EXPECT_NE(a["training"]["best_validation_loss"], c["training"]["best_validation_loss"]);
}

// A re-run with more iterations continues from the file: from its iterations, its best
// predictor (the recorded loss is the file's, recomputed, and no worse than the one it
// continued from) and its seconds (the file's plus this run's, within the wall time).
TEST(AmedDistill, ContinuesWhereItStopped) {
  TempDir tmp;
  const fs::path file = tmp.path / "a.pt";
  const Config first = gmm_config("amed+dpm2", tmp.path / "cache", 30);
  auto t0 = std::chrono::steady_clock::now();
  const json a = run_distill(first, file);
  const double wall_a = seconds_since(t0);
  EXPECT_GT(a["training"]["seconds"].get<double>(), 0.0);
  EXPECT_LE(a["training"]["seconds"].get<double>(), wall_a);
  const ValidationLoss loss(first);  // the same validation trajectories for 30 and 50 iterations
  EXPECT_NEAR(a["training"]["best_validation_loss"].get<double>(), loss_of(loss, file),
              1e-6 * loss_of(loss, file));
  fs::copy_file(file, tmp.path / "after-30.pt");
  {  // the file says 1000 s were spent on it before
    AmedPredictor p = AmedPredictor::load(file);
    json meta = p.metadata();
    meta["training"]["seconds"] = 1000.0;
    p.set_metadata(meta);
    write_file_atomic(file, p.archive_bytes());
  }

  t0 = std::chrono::steady_clock::now();
  const json c = run_distill(gmm_config("amed+dpm2", tmp.path / "cache", 50), file);
  const double wall_c = seconds_since(t0);
  EXPECT_EQ(c["training"]["iterations_run"], 50);
  EXPECT_EQ(c["training"]["midpoint_validation_loss"], a["training"]["midpoint_validation_loss"]);
  EXPECT_GT(c["training"]["seconds"].get<double>(), 1000.0);
  EXPECT_LE(c["training"]["seconds"].get<double>(), 1000.0 + wall_c);
  const double continued = loss_of(loss, file);
  EXPECT_NEAR(c["training"]["best_validation_loss"].get<double>(), continued, 1e-6 * continued);
  EXPECT_LE(continued, loss_of(loss, tmp.path / "after-30.pt") * (1 + 1e-9));
  // and a file for another setting is not overwritten
  const std::string msg = error_of([&] { run_distill(gmm_config("amed", tmp.path / "cache", 5), file); });
  EXPECT_NE(msg.find("exists and is not a predictor for this setting"), std::string::npos) << msg;
  EXPECT_EQ(AmedPredictor::load(file).metadata()["training"], c["training"]);
}

TEST(AmedDistill, NeedsAnAmedStudentAndATrainingFreeTeacher) {
  TempDir tmp;
  EXPECT_NE(error_of([&] { run_distill(gmm_config("heun", tmp.path, 5), tmp.path / "x.pt"); })
                .find("/solver/name: solver 'heun' uses no predictor"),
            std::string::npos);
  json j = {{"model", {{"path", model_path("gmm2d.pt").string()}}}, {"distill", {{"teacher", "amed"}}}};
  EXPECT_NE(error_of([&] { parse_config(j, "c.json", "."); }).find("/distill/teacher: the teacher must be a training-free"),
            std::string::npos);
  j["distill"] = {{"teacher_points", 0}};
  EXPECT_NE(error_of([&] { parse_config(j, "c.json", "."); }).find("/distill/teacher_points: must be >= 1"),
            std::string::npos);
  j["distill"] = json::object();
  j["solver"] = {{"name", "heun"}, {"predictor", "p.pt"}};
  EXPECT_NE(error_of([&] { parse_config(j, "c.json", "."); }).find("/solver/predictor: solver 'heun' takes no predictor"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(tmp.path / "x.pt"));
}

// What cannot be distilled is named before any work, and nothing is written.
TEST(AmedDistill, RefusesWhatItCannotDistillByName) {
  TempDir tmp;
  Config to_zero = gmm_config("amed", tmp.path / "cache", 5);
  to_zero.schedule.denoise_to_zero = true;
  std::string msg = error_of([&] { run_distill(to_zero, tmp.path / "p.pt"); });
  EXPECT_NE(msg.find("gmm.json: /schedule/denoise_to_zero: distillation targets the ODE solution at sigma_min; set it "
                     "to false"),
            std::string::npos)
      << msg;
  // From sigma = inf the first interval is the exact DDIM limit: one step leaves nothing to learn.
  json j = {{"model", {{"path", model_path("gmm2d.pt").string()}, {"sigma_max", "inf"}, {"sigma_min", 0.002}}},
            {"solver", {{"name", "amed"}, {"steps", 1}}},
            {"schedule", {{"name", "time_uniform"}}},
            {"distill", {{"trajectories", 16}, {"validation", 16}, {"iterations", 1}}}};
  msg = error_of([&] { run_distill(parse_config(j, "inf.json", "."), tmp.path / "p.pt"); });
  EXPECT_NE(msg.find("inf.json: /solver: 1 step(s) leave no interval for the predictor; use more steps"),
            std::string::npos)
      << msg;
  EXPECT_FALSE(fs::exists(tmp.path / "p.pt"));
  EXPECT_FALSE(fs::exists(tmp.path / "cache"));  // no teacher ran
}

// A file at the output that is not a predictor (or not one for this setting) is kept as it is.
TEST(AmedDistill, NeverWritesOverAFileThatIsNotItsPredictor) {
  TempDir tmp;
  const fs::path out = tmp.path / "notes.pt";
  std::ofstream(out) << "my notes";
  const std::string msg = error_of([&] { run_distill(gmm_config("amed", tmp.path / "cache", 5), out); });
  EXPECT_NE(msg.find(out.string() + " exists and is not a predictor for this setting: remove it or choose another -o"),
            std::string::npos)
      << msg;
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "my notes");
}

TEST(AmedDistill, LearnsTheLastIntervalIntoZero) {
  TempDir tmp;
  Config cfg = gmm_config("amed", tmp.path / "cache", 40);
  cfg.model.overrides["sigma_min"] = 0;
  cfg.schedule.schedule = &find_schedule("polynomial");
  cfg.solver.last_interval = LastInterval::learned;
  cfg.distill.normalize = true;
  cfg.distill.last_weight = 4;
  const fs::path out = tmp.path / "p.pt";
  const json m = run_distill(cfg, out);
  EXPECT_EQ(m["last_interval"], "learned");
  EXPECT_EQ(m["steps"], 3);  // 5 NFE: 3 intervals learned, AFS
  EXPECT_EQ(m["afs"], true);
  EXPECT_LT(m["training"]["best_validation_loss"].get<double>(),
            0.9 * m["training"]["midpoint_validation_loss"].get<double>());
  // sampling with it needs the same last-interval rule
  json j = {{"model", {{"path", model_path("gmm2d.pt").string()}, {"sigma_min", 0}}},
            {"solver", {{"name", "amed"}, {"nfe", 5}, {"predictor", out.string()}, {"last_interval", "learned"}}},
            {"schedule", {{"name", "polynomial"}}}};
  const Model model = Model::load({model_path("gmm2d.pt"), "cpu", "float32", {{"sigma_min", 0}}});
  Config use = parse_config(j, "use.json", ".");
  EXPECT_TRUE(load_run_predictor(use, model, plan_run(use, model)).has_value());
  j["solver"].erase("last_interval");
  j["solver"]["nfe"] = 4;  // the base rule's 3 intervals into 0 with AFS
  use = parse_config(j, "use.json", ".");
  const std::string msg = error_of([&] { load_run_predictor(use, model, plan_run(use, model)); });
  EXPECT_NE(msg.find("last interval \"learned\" (this run: \"base\")"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- the teacher's points

// Distillation's teacher points (DESIGN.md §4) are refine_grid's with Inside::geometric: the
// student's points; geometric, σ_i·(σ_{i+1}/σ_i)^{k/(M+1)}, inside every interval between
// positive σ's; into 0 and from ∞ where refine_grid's schedule rule puts them.
TEST(AmedDistill, TeacherPointsAreRefineGridsGeometricInside) {
  const Process flow = Process::from_json({{"type", "flow"}}, "test");
  auto check = [](const Grid& g, int m, const ScheduleSpec& spec, const SigmaRange& range) {
    const Grid own = refine_grid(g, m, spec, range);
    const Grid fine = refine_grid(g, m, spec, range, Inside::geometric);
    const size_t per = static_cast<size_t>(m) + 1;
    ASSERT_EQ(fine.size(), (g.size() - 1) * per + 1);
    ASSERT_EQ(own.size(), fine.size());
    for (size_t i = 0; i + 1 < g.size(); ++i) {
      EXPECT_EQ(fine[i * per], g[i]);
      for (size_t k = 1; k < per; ++k) {
        const double u = static_cast<double>(k) / static_cast<double>(per);
        if (std::isfinite(g[i]) && g[i + 1] > 0)
          EXPECT_EQ(fine[i * per + k], g[i] * std::pow(g[i + 1] / g[i], u)) << i << " " << k;
        else
          EXPECT_EQ(fine[i * per + k], own[i * per + k]) << i << " " << k;
      }
    }
    EXPECT_EQ(fine.back(), g.back());
  };
  // The shipped predictors' plan: vp_time from 80 to 0 (fmnist_flow with model.sigma_min 0),
  // M = 20; into 0 the schedule's own points at N·(M+1) steps.
  const ScheduleSpec vp = test::schedule("vp_time");
  const SigmaRange to_zero_range{0.0, 80.0, flow};
  for (int n : {2, 3, 4, 5}) check(make_grid(vp, n, to_zero_range), 20, vp, to_zero_range);
  const Grid g3 = make_grid(vp, 3, to_zero_range), sched = make_grid(vp, 63, to_zero_range);
  const Grid fine3 = refine_grid(g3, 20, vp, to_zero_range, Inside::geometric);
  for (size_t j = 43; j < 63; ++j) EXPECT_EQ(fine3[j], sched[j]) << j;
  EXPECT_NE(fine3[10], sched[10]);  // inside a positive interval: geometric, not the schedule's
  // To schedule.sigma_min 0.002; from σ̃ = ∞ (time_uniform on a flow from t = 1): the first
  // interval the schedule's; a custom grid into 0: linear there; a custom grid from ∞: refused.
  const SigmaRange to_002{0.002, 80.0, flow}, from_inf{0.0, INFINITY, flow};
  check(make_grid(vp, 4, to_002), 5, vp, to_002);
  check(make_grid(test::schedule("logsnr"), 3, to_002), 3, test::schedule("logsnr"), to_002);
  const ScheduleSpec tu = test::schedule("time_uniform");
  check(make_grid(tu, 4, from_inf), 3, tu, from_inf);
  const ScheduleSpec custom = test::schedule("custom", {80, 10, 2, 0.5, 0});
  check(custom.sigmas, 2, custom, to_zero_range);
  const Grid fine_custom = refine_grid(custom.sigmas, 3, custom, to_zero_range, Inside::geometric);
  EXPECT_EQ(fine_custom[13], 0.5 * (1 - 1.0 / 4));
  const ScheduleSpec from_inf_custom = test::schedule("custom", {INFINITY, 10, 1, 0});
  EXPECT_NE(error_of([&] { refine_grid(from_inf_custom.sigmas, 2, from_inf_custom, from_inf, Inside::geometric); })
                .find("cannot place teacher points between sigma inf"),
            std::string::npos);
}

// The shipped predictors' teacher: each file's grid is the plan of configs/fmnist_flow_amed5.json
// at its steps, and the recorded teacher NFE is that of the teacher on refine_grid's points.
TEST(AmedDistill, ShippedPredictorsRecordTheTeacherOfRefineGrid) {
  const SigmaRange range{0.0, 80.0, Process::from_json({{"type", "flow"}}, "test")};
  const ScheduleSpec vp = test::schedule("vp_time");
  int checked = 0;
  for (const auto& e : fs::directory_iterator(test::repo() / "models")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("fmnist_flow.amed", 0) != 0) continue;
    const json m = AmedPredictor::load(e.path()).metadata();
    const Grid g = make_grid(vp, m["steps"].get<int>(), range);
    ASSERT_EQ(m["sigmas"], json(g)) << name;
    const Grid fine = refine_grid(g, m["teacher"]["extra_points"].get<int>(), vp, range, Inside::geometric);
    EXPECT_TRUE(passes_through(fine, g)) << name;
    EXPECT_EQ(count_nfe(find_solver(m["teacher"]["solver"].get<std::string>()), fine, {}, false),
              m["teacher"]["nfe"].get<int>())
        << name;
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}
