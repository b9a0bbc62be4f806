// Schedules (DESIGN.md §3): the registry, the σ̃ grid each schedule makes (ends, strict
// decrease, its own spacing, the flow shift), refinement for teachers, the schedules that
// fix their steps, the records' JSON of a schedule and a grid, diffusers' timestep spacings
// and vp_time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "diffode/core/error.hpp"
#include "diffode/core/process.hpp"
#include "diffode/core/schedule.hpp"
#include "test_util.hpp"

using namespace diffode;
using test::ddpm;
using test::error_of;
using nlohmann::json;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Process process(const char* type) { return Process::from_json({{"type", type}}, "test"); }


// The schedules given by a formula of the range (not a list, not trained timesteps).
std::vector<std::string> formula_schedules() {
  std::vector<std::string> out;
  for (const auto& s : schedules()) {
    const ScheduleSpec spec = test::schedule(s.name);
    if (!s.takes("sigmas") && !s.takes("path") && !picks_timesteps(spec)) out.push_back(s.name);
  }
  return out;
}

// A grid's shape: N + 1 points from `first` to `last`, strictly decreasing, none negative.
void expect_grid(const Grid& g, int n, double first, double last, const std::string& at) {
  ASSERT_EQ(g.size(), static_cast<size_t>(n) + 1) << at;
  EXPECT_EQ(g.front(), first) << at;
  EXPECT_EQ(g.back(), last) << at;
  for (size_t i = 1; i < g.size(); ++i) {
    EXPECT_LT(g[i], g[i - 1]) << at << ", point " << i;
    EXPECT_GE(g[i], 0.0) << at << ", point " << i;
  }
}

}  // namespace

// ---------------------------------------------------------------- the registry

TEST(ScheduleRegistry, EveryListedScheduleIsFoundAndUnknownNamesSuggest) {
  const std::vector<std::string> names = schedule_names();
  ASSERT_EQ(names.size(), schedules().size());
  for (const auto& name : {"polynomial", "logsnr", "time_uniform", "vp_time", "linspace", "leading", "trailing",
                           "custom", "tuned"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  for (const auto& name : names) {
    EXPECT_EQ(find_schedule(name).name, name);
    EXPECT_FALSE(find_schedule(name).description.empty()) << name;
  }
  const std::string near = error_of([] { find_schedule("polynomal"); });
  EXPECT_NE(near.find("unknown schedule 'polynomal' (did you mean 'polynomial'?); valid: polynomial, logsnr, "),
            std::string::npos)
      << near;
  const std::string far = error_of([] { find_schedule("qqqqqqqq"); });
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
  for (const auto& name : names) EXPECT_NE(far.find(name), std::string::npos) << name << " not in: " << far;
  // The parameters each one takes (the config keys of `schedule` it reads).
  EXPECT_TRUE(find_schedule("polynomial").takes("rho"));
  EXPECT_FALSE(find_schedule("logsnr").takes("rho"));
  EXPECT_TRUE(find_schedule("vp_time").takes("beta_max"));
  EXPECT_FALSE(find_schedule("polynomial").takes("beta_max"));
  EXPECT_TRUE(find_schedule("custom").takes("sigmas"));
  EXPECT_TRUE(find_schedule("leading").takes("offset"));
  EXPECT_EQ(find_schedule("polynomial").default_rho, 7.0);
}

TEST(ScheduleRegistry, OnlyTheTimestepSpacingsPickTimesteps) {
  for (const auto& name : schedule_names()) {
    const bool picks = name == "linspace" || name == "leading" || name == "trailing";
    EXPECT_EQ(picks_timesteps(test::schedule(name)), picks) << name;
  }
}

// ---------------------------------------------------------------- make_grid

// Every registered schedule: N + 1 points, strictly decreasing, from σ_max to σ_min (a
// timestep spacing: trained timesteps of the table, then 0; a list: the list).
TEST(MakeGrid, EveryScheduleSpansItsRangeAndStrictlyDecreases) {
  const Process edm = process("edm"), vp = process("vp"), flow = process("flow"), table = ddpm();
  const std::vector<std::pair<std::string, SigmaRange>> ranges = {
      {"edm", {0.002, 80.0, edm}},
      {"vp", {vp.sigma_tilde(vp.t_min()), vp.sigma_tilde(vp.t_max()), vp}},
      {"flow", {0.01, 50.0, flow}},
  };
  int checked = 0;
  for (const auto& name : schedule_names()) {
    ScheduleSpec spec = test::schedule(name);
    if (name == "custom" || name == "tuned") {
      spec.sigmas = {80.0, 12.0, 1.5, 0.3, 0.0};
      EXPECT_EQ(make_grid(spec, 4, ranges[0].second), spec.sigmas) << name;
    } else if (picks_timesteps(spec)) {
      const SigmaRange r{table.sigma_tilde(0.0), table.sigma_tilde(999.0), table};
      for (int n : {1, 2, 7, 40, 1000}) {
        const Grid g = make_grid(spec, n, r);
        ASSERT_EQ(g.size(), static_cast<size_t>(n) + 1) << name << " " << n;
        EXPECT_EQ(g.back(), 0.0) << name << " " << n;
        for (size_t i = 0; i + 1 < g.size(); ++i) {
          if (i > 0) {
            EXPECT_LT(g[i], g[i - 1]) << name << " " << n << ", point " << i;
          }
          const double t = table.time_of(g[i]);  // a whole trained timestep
          EXPECT_EQ(t, std::nearbyint(t)) << name << " " << n << ", point " << i;
          EXPECT_EQ(g[i], table.sigma_tilde(t)) << name << " " << n << ", point " << i;
        }
      }
    } else {
      for (const auto& [what, r] : ranges)
        for (int n : {1, 2, 7, 40}) expect_grid(make_grid(spec, n, r), n, r.sigma_max, r.sigma_min, name + " on " + what);
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(schedules().size()));
}

// Each formula is its published spacing: polynomial uniform in σ^(1/ρ) (EDM), logsnr uniform
// in log σ, time_uniform uniform in the process's t^(1/ρ).
TEST(MakeGrid, FormulasAreTheirPublishedSpacings) {
  const Process vp = process("vp");
  const SigmaRange r{0.002, 80.0, vp};
  const int n = 9;
  for (double rho : {7.0, 3.0}) {
    ScheduleSpec spec = test::schedule("polynomial");
    if (rho != 7.0) spec.rho = rho;  // 7: the default
    const Grid g = make_grid(spec, n, r);
    const double a = std::pow(80.0, 1 / rho), b = std::pow(0.002, 1 / rho);
    for (int i = 0; i <= n; ++i) EXPECT_NEAR(g[i], std::pow(a + (b - a) * i / n, rho), 1e-12 * g[i]) << rho << " " << i;
  }
  const Grid lg = make_grid(test::schedule("logsnr"), n, r);
  for (int i = 0; i <= n; ++i)
    EXPECT_NEAR(std::log(lg[i]), std::log(80.0) + (std::log(0.002) - std::log(80.0)) * i / n, 1e-12) << i;
  for (double rho : {1.0, 2.0}) {
    ScheduleSpec spec = test::schedule("time_uniform");
    if (rho != 1.0) spec.rho = rho;
    const Grid g = make_grid(spec, n, r);
    const double a = std::pow(vp.time_of(80.0), 1 / rho), b = std::pow(vp.time_of(0.002), 1 / rho);
    for (int i = 0; i <= n; ++i)
      EXPECT_NEAR(std::pow(vp.time_of(g[i]), 1 / rho), a + (b - a) * i / n, 1e-12) << rho << " " << i;
  }
}

// Ranges to σ = 0 and from σ = ∞ (a flow model from t = 1): the schedules that span them do,
// the others say what to set.
TEST(MakeGrid, RangesToZeroAndFromInfinity) {
  const Process flow = process("flow");
  for (const char* name : {"polynomial", "time_uniform", "vp_time"})
    expect_grid(make_grid(test::schedule(name), 6, {0.0, 80.0, flow}), 6, 80.0, 0.0, std::string(name) + " to 0");
  const Grid from_inf = make_grid(test::schedule("time_uniform"), 6, {0.0, kInf, flow});
  ASSERT_EQ(from_inf.size(), 7u);
  EXPECT_TRUE(std::isinf(from_inf.front()));
  EXPECT_EQ(from_inf.back(), 0.0);
  for (size_t i = 2; i < from_inf.size(); ++i) EXPECT_LT(from_inf[i], from_inf[i - 1]) << i;
  // time_uniform on flow from t = 1: t uniform, σ̃ = t/(1 − t)
  for (int i = 1; i <= 6; ++i) EXPECT_NEAR(flow.time_of(from_inf[i]), 1.0 - i / 6.0, 1e-12) << i;

  EXPECT_NE(error_of([&] { make_grid(test::schedule("logsnr"), 6, {0.0, 80.0, flow}); })
                .find("schedule 'logsnr' needs 0 < sigma_min and a finite sigma_max, but the range is [0, 80]"),
            std::string::npos);
  for (const char* name : {"polynomial", "vp_time"})
    EXPECT_NE(error_of([&] { make_grid(test::schedule(name), 6, {0.0, kInf, flow}); })
                  .find(std::string("schedule '") + name + "' needs a finite sigma_max"),
              std::string::npos)
        << name;
  // A time-spaced schedule needs the process's time at both ends.
  const Process table = ddpm();
  EXPECT_NE(error_of([&] { make_grid(test::schedule("time_uniform"), 6, {0.002, 80.0, table}); })
                .find("needs the process's time at sigma 0.002, which process 'discrete' does not reach"),
            std::string::npos);
}

TEST(MakeGrid, BadStepsAndListsAreNamed) {
  const SigmaRange r{0.002, 80.0, process("edm")};
  EXPECT_EQ(error_of([&] { make_grid(test::schedule("polynomial"), 0, r); }), "steps must be >= 1, got 0");
  EXPECT_EQ(error_of([&] { make_grid(test::schedule("custom", {80, 1, 0.1}), 5, r); }),
            "schedule 'custom' lists 3 sigmas (2 steps), but 5 steps were asked for");
  EXPECT_NE(error_of([&] { make_grid(test::schedule("custom", {80, 1, 1, 0.1}), 3, r); })
                .find("schedule 'custom' gave a grid that does not strictly decrease at step 2 (1 -> 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_grid(test::schedule("linspace"), 5, r); })
                .find("schedule 'linspace' spaces the trained timesteps of a discrete process, but the model's process "
                      "is 'edm'"),
            std::string::npos);
  const Process table = ddpm();
  EXPECT_NE(error_of([&] { make_grid(test::schedule("trailing"), 1001, {0.0, 157.0, table}); })
                .find("schedule 'trailing' cannot pick 1001 distinct timesteps of the 1000 trained ones"),
            std::string::npos);
}

// With a flow shift s the grid is s·(the schedule's grid on [σ_min/s, σ_max/s]), the ends
// kept; a tuned grid was found shifted and is taken as it is.
TEST(MakeGrid, AFlowShiftScalesTheUnshiftedGridAndKeepsTheEnds) {
  const double s = 3.0, lo = 0.002, hi = 80.0;
  const Process shifted = Process::from_json({{"type", "flow"}, {"shift", s}}, "t"), plain = process("flow");
  for (const auto& name : formula_schedules()) {
    const ScheduleSpec spec = test::schedule(name);
    const Grid g = make_grid(spec, 8, {lo, hi, shifted});
    const Grid base = make_grid(spec, 8, {lo / s, hi / s, plain});
    expect_grid(g, 8, hi, lo, name);
    for (size_t i = 1; i + 1 < g.size(); ++i) EXPECT_NEAR(g[i], s * base[i], 1e-12 * g[i]) << name << " " << i;
    EXPECT_NE(g, make_grid(spec, 8, {lo, hi, plain})) << name;  // the shift moved it
  }
  const std::vector<double> found = {80.0, 9.0, 1.0, 0.002};
  EXPECT_EQ(make_grid(test::schedule("tuned", found), 3, {lo, hi, shifted}), found);
}

// ---------------------------------------------------------------- refine_grid

// m more points in every interval, the original points kept exactly; a schedule that passes
// through the grid at N·(m+1) steps gives its own points.
TEST(RefineGrid, KeepsEveryPointAndUsesTheSchedulesOwnFinerGrid) {
  const Process edm = process("edm"), flow = process("flow");
  for (const auto& name : formula_schedules())
    for (const SigmaRange& r : {SigmaRange{0.002, 80.0, edm}, SigmaRange{0.002, 80.0, flow}})
      for (int m : {1, 3}) {
        const ScheduleSpec spec = test::schedule(name);
        const int n = 5;
        const Grid g = make_grid(spec, n, r);
        const Grid fine = refine_grid(g, m, spec, r);
        const std::string at = name + " on " + r.process.name() + ", m " + std::to_string(m);
        ASSERT_EQ(fine.size(), static_cast<size_t>(n * (m + 1) + 1)) << at;
        for (int i = 0; i <= n; ++i) EXPECT_EQ(fine[static_cast<size_t>(i * (m + 1))], g[static_cast<size_t>(i)]) << at;
        const Grid own = make_grid(spec, n * (m + 1), r);
        for (size_t j = 0; j < fine.size(); ++j) {
          if (j > 0) {
            EXPECT_LT(fine[j], fine[j - 1]) << at << ", point " << j;
          }
          EXPECT_NEAR(fine[j], own[j], 1e-9 * own[j]) << at << ", point " << j;
        }
      }
}

// A grid the schedule does not pass through (a list, or another schedule's grid): geometric
// inside each interval between positive points, linear into σ = 0.
TEST(RefineGrid, ElseGeometricInsideAndLinearIntoZero) {
  const SigmaRange r{0.0, 80.0, process("edm")};
  const Grid g = {80.0, 10.0, 2.0, 0.5, 0.0};
  for (int m : {1, 2, 4}) {
    const Grid fine = refine_grid(g, m, test::schedule("custom", g), r);
    ASSERT_EQ(fine.size(), static_cast<size_t>(4 * (m + 1) + 1)) << m;
    for (size_t i = 0; i + 1 < g.size(); ++i) {
      const double a = g[i], b = g[i + 1];
      EXPECT_EQ(fine[i * static_cast<size_t>(m + 1)], a);
      for (int k = 1; k <= m; ++k) {
        const double u = static_cast<double>(k) / (m + 1);
        const double want = b > 0 ? a * std::pow(b / a, u) : a * (1 - u);
        EXPECT_NEAR(fine[i * static_cast<size_t>(m + 1) + static_cast<size_t>(k)], want, 1e-12 * want)
            << "m " << m << ", interval " << i << ", point " << k;
      }
    }
    EXPECT_EQ(fine.back(), 0.0);
  }
  // logsnr does not pass through polynomial's points: geometric (logsnr's own spacing inside).
  const SigmaRange pos{0.002, 80.0, process("edm")};
  const Grid poly = make_grid(test::schedule("polynomial"), 4, pos);
  const Grid fine = refine_grid(poly, 1, test::schedule("logsnr"), pos);
  for (size_t i = 0; i + 1 < poly.size(); ++i)
    EXPECT_NEAR(fine[2 * i + 1], std::sqrt(poly[i] * poly[i + 1]), 1e-12 * fine[2 * i + 1]) << i;
  // From σ = inf only a schedule can say where the points go.
  EXPECT_NE(error_of([&] {
              refine_grid({kInf, 1.0, 0.1}, 1, test::schedule("custom", {kInf, 1.0, 0.1}), {0.1, kInf, process("flow")});
            }).find("cannot place teacher points between sigma inf and 1"),
            std::string::npos);
}

// ---------------------------------------------------------------- fixed steps and JSON

// Grid points computed twice agree within 1e-9 relative; sigma = inf is only itself (a finite
// sigma matched inf once, and tune's recorder then took D at an infinite first candidate from
// the teacher's last evaluation).
TEST(SameSigma, CloseFiniteSigmasMatchAndInfinityOnlyItself) {
  EXPECT_TRUE(diffode::same_sigma(2.0, 2.0 * (1 + 1e-12)));
  EXPECT_FALSE(diffode::same_sigma(2.0, 2.0 * (1 + 1e-6)));
  EXPECT_TRUE(diffode::same_sigma(0.0, 0.0));
  EXPECT_TRUE(diffode::same_sigma(INFINITY, INFINITY));
  EXPECT_FALSE(diffode::same_sigma(1.0, INFINITY));
  EXPECT_FALSE(diffode::same_sigma(INFINITY, 80.0));
  EXPECT_FALSE(diffode::same_sigma(NAN, NAN));
  EXPECT_TRUE(diffode::passes_through({INFINITY, 3.0, 1.0, 0.5, 0.0}, {INFINITY, 1.0, 0.0}));
  EXPECT_FALSE(diffode::passes_through({80.0, 3.0, 1.0, 0.5, 0.0}, {INFINITY, 1.0, 0.0}));
}

TEST(FixedSteps, OnlyAListFixesTheSteps) {
  EXPECT_EQ(fixed_steps(test::schedule("custom", {80, 10, 1, 0.002})), 3);
  EXPECT_EQ(fixed_steps(test::schedule("tuned", {80, 1, 0.002})), 2);
  EXPECT_FALSE(fixed_steps(test::schedule("custom")).has_value());  // no list yet
  for (const auto& name : formula_schedules()) EXPECT_FALSE(fixed_steps(test::schedule(name)).has_value()) << name;
  EXPECT_FALSE(fixed_steps(test::schedule("trailing")).has_value());
}

// The schedule as records name it: its name and the parameters that shaped the grid.
TEST(ScheduleJson, NamesTheScheduleAndTheParametersThatShapedTheGrid) {
  EXPECT_EQ(schedule_json(test::schedule("logsnr")), json({{"name", "logsnr"}}));
  EXPECT_EQ(schedule_json(test::schedule("polynomial")), json({{"name", "polynomial"}}));  // the default rho
  ScheduleSpec poly = test::schedule("polynomial");
  poly.rho = 3.5;
  EXPECT_EQ(schedule_json(poly), json({{"name", "polynomial"}, {"rho", 3.5}}));
  ScheduleSpec vp = test::schedule("vp_time");
  EXPECT_EQ(schedule_json(vp), json({{"name", "vp_time"}, {"beta_min", 0.1}, {"beta_max", 20.0}}));
  vp.beta_min = 0.5;
  vp.beta_max = 12.0;
  EXPECT_EQ(schedule_json(vp), json({{"name", "vp_time"}, {"beta_min", 0.5}, {"beta_max", 12.0}}));
  EXPECT_EQ(schedule_json(test::schedule("custom", {2, 1})), json({{"name", "custom"}}));  // the grid is recorded apart
}

TEST(GridJson, WritesInfAsAStringAndEveryOtherSigmaExactly) {
  const Grid g = {kInf, 80.0 / 3.0, 1e-300, 0.002, 0.0};
  const json j = grid_json(g);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), g.size());
  EXPECT_EQ(j[0], "inf");
  for (size_t i = 1; i < g.size(); ++i) {
    ASSERT_TRUE(j[i].is_number_float()) << i;
    EXPECT_EQ(j[i].get<double>(), g[i]) << i;
  }
  EXPECT_EQ(json::parse(j.dump()), j);  // through text, bit for bit
  EXPECT_EQ(grid_json({}), json::array());
  EXPECT_EQ(grid_json({2.5, 0.0}).dump(), "[2.5,0.0]");
}

// ---------------------------------------------------------------- timestep spacings

// diffusers' timestep_spacing for T = 1000 (numpy rounds half to even), then σ = 0.
TEST(Discrete, TimestepSpacingsPickDiffusersTimesteps) {
  const Process p = ddpm();
  const SigmaRange range{p.sigma_tilde(0.0), p.sigma_tilde(999.0), p};
  auto expect = [&](const char* name, int steps, std::vector<int> timesteps, int offset = 0) {
    ScheduleSpec spec = test::schedule(name);
    spec.offset = offset;
    const Grid g = make_grid(spec, steps, range);
    ASSERT_EQ(g.size(), timesteps.size() + 1) << name;
    for (size_t k = 0; k < timesteps.size(); ++k)
      EXPECT_NEAR(g[k], p.sigma_tilde(timesteps[k]), 1e-12 * g[k]) << name << " " << k;
    EXPECT_EQ(g.back(), 0.0);
  };
  expect("linspace", 7, {999, 832, 666, 500, 333, 166, 0});
  expect("trailing", 7, {999, 856, 713, 570, 428, 285, 142});
  expect("leading", 7, {852, 710, 568, 426, 284, 142, 0});
  expect("leading", 10, {901, 801, 701, 601, 501, 401, 301, 201, 101, 1}, 1);
  expect("trailing", 4, {999, 749, 499, 249});
  // Ties at .5, rounded as numpy's own arithmetic gives them (numpy 1.x output, copied).
  expect("linspace", 27, {999, 961, 922, 884, 845, 807, 768, 730, 692, 653, 615, 576, 538, 499,
                          461, 423, 384, 346, 307, 269, 231, 192, 154, 115, 77, 38, 0});
  expect("trailing", 48, {999, 978, 957, 936, 916, 895, 874, 853, 832, 811, 791, 770, 749, 728, 707, 686,
                          666, 645, 624, 603, 582, 561, 541, 520, 499, 478, 457, 436, 416, 395, 374, 353,
                          332, 311, 291, 270, 249, 228, 207, 186, 166, 145, 124, 103, 82,  61,  41,  20});
  // numpy's arange gives 62 values at N = 61, the last -1 (diffusers' bug): the first 61 are taken.
  expect("trailing", 61, {999, 983, 966, 950, 933, 917, 901, 884, 868, 851, 835, 819, 802, 786, 769, 753,
                          737, 720, 704, 688, 671, 655, 638, 622, 606, 589, 573, 556, 540, 524, 507, 491,
                          474, 458, 442, 425, 409, 392, 376, 360, 343, 327, 310, 294, 278, 261, 245, 229,
                          212, 196, 179, 163, 147, 130, 114, 97,  81,  65,  48,  32,  15});
  // A trained timestep's sigma maps back to that whole timestep exactly (networks that cast
  // t to an integer must not get the one below).
  for (int i : {1, 17, 499, 998, 999}) EXPECT_EQ(p.time_of(p.sigma_tilde(i)), static_cast<double>(i)) << i;
  try {
    ScheduleSpec spec = test::schedule("leading");
    spec.offset = 200;
    make_grid(spec, 5, range);
    ADD_FAILURE() << "offset 200 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("picks timestep 1000, outside the trained 0 .. 999"), std::string::npos)
        << e.what();
  }
  const Process flow = Process::from_json({{"type", "flow"}}, "t");
  EXPECT_THROW(make_grid(test::schedule("trailing"), 5, {0.0, 80.0, flow}), InputError);
  // Teacher points (distillation) inside the last interval into 0 stay on the table.
  const Grid fine = refine_grid(make_grid(test::schedule("trailing"), 5, range), 3, test::schedule("trailing"), range);
  ASSERT_EQ(fine.size(), 21u);
  for (size_t i = 0; i + 1 < fine.size(); ++i) {
    EXPECT_GE(fine[i], p.sigma_tilde(0.0)) << i;
    EXPECT_FALSE(std::isnan(p.time_of(fine[i]))) << i;
  }
}

// ---- vp_time: uniform in the time of a VP process with linear beta, for any model

namespace {
// The VP time of sigma_tilde, solved here from sigma_tilde² = exp(½t²(b1 − b0) + t b0) − 1.
double vp_t(double sigma, double b0, double b1) {
  const double c = std::log1p(sigma * sigma), db = b1 - b0;
  return 2.0 * c / (b0 + std::sqrt(b0 * b0 + 2.0 * db * c));
}
}  // namespace

TEST(VpTime, UniformInVpTimeWithExactEndpointsForEveryModelRange) {
  const Process vp = process("vp");
  struct Case {
    const char* what;
    SigmaRange range;
  };
  const std::vector<Case> cases = {
      {"edm", {0.002, 80.0, process("edm")}},
      {"vp default range", {vp.sigma_tilde(vp.t_min()), vp.sigma_tilde(vp.t_max()), vp}},
      {"flow to 0", {0.0, 80.0, process("flow")}},
      {"edm to 0", {0.0, 80.0, process("edm")}},
  };
  for (const auto& [b0, b1] : {std::pair{0.1, 20.0}, std::pair{0.5, 5.0}})
    for (const Case& c : cases)
      for (int n : {1, 5, 18, 200}) {
        ScheduleSpec spec = test::schedule("vp_time");
        spec.beta_min = b0;
        spec.beta_max = b1;
        const Grid g = make_grid(spec, n, c.range);
        const std::string at = std::string(c.what) + ", N " + std::to_string(n) + ", beta " + std::to_string(b1);
        ASSERT_EQ(g.size(), static_cast<size_t>(n + 1)) << at;
        EXPECT_EQ(g.front(), c.range.sigma_max) << at;
        EXPECT_EQ(g.back(), c.range.sigma_min) << at;
        const double t0 = vp_t(g.front(), b0, b1), dt = (vp_t(g.back(), b0, b1) - t0) / n;
        for (int i = 0; i <= n; ++i) {
          if (i > 0) {
            EXPECT_LT(g[i], g[i - 1]) << at << ", point " << i;
          }
          EXPECT_NEAR(vp_t(g[i], b0, b1), t0 + i * dt, 1e-12) << at << ", point " << i;
        }
      }
}

TEST(VpTime, IgnoresTheModelsProcessAndDiffersFromPolynomial) {
  const Grid edm = make_grid(test::schedule("vp_time"), 10, {0.002, 80.0, process("edm")});
  EXPECT_EQ(make_grid(test::schedule("vp_time"), 10, {0.002, 80.0, process("flow")}), edm);
  EXPECT_EQ(make_grid(test::schedule("vp_time"), 10, {0.002, 80.0, process("vp")}), edm);
  // On a vp model with the same betas, it is time_uniform.
  const Grid tu = make_grid(test::schedule("time_uniform"), 10, {0.002, 80.0, process("vp")});
  for (size_t i = 0; i < edm.size(); ++i) EXPECT_NEAR(edm[i], tu[i], 1e-12 * tu[i]) << i;
  const Grid poly = make_grid(test::schedule("polynomial"), 10, {0.002, 80.0, process("edm")});
  EXPECT_GT(std::abs(edm[5] - poly[5]), 1e-3 * poly[5]);
}

TEST(VpTime, InfiniteSigmaMaxAndBadBetasAreNamed) {
  try {
    make_grid(test::schedule("vp_time"), 5, {0.0, INFINITY, process("flow")});
    FAIL();
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("schedule 'vp_time' needs a finite sigma_max"), std::string::npos) << msg;
    EXPECT_NE(msg.find("set model.sigma_max"), std::string::npos) << msg;
  }
  ScheduleSpec spec = test::schedule("vp_time");
  spec.beta_min = 20;
  try {
    make_grid(spec, 5, {0.002, 80.0, process("edm")});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("0 < beta_min < beta_max"), std::string::npos) << e.what();
  }
}
