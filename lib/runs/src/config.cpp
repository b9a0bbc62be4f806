// The config (DESIGN.md §7): one table of keys per section, read once into typed sections.
#include "diffode/runs/config.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config_keys.hpp"
#include "diffode/core/dtype.hpp"
#include "run_dir.hpp"
#include "diffode/runs/tuned_grid.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/json_file.hpp"
#include "diffode/core/model.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace config_table;

namespace config_table {

const SolverInfo* Codec<const SolverInfo*>::read(const json& v, const Where& w) {
  try {
    return &find_solver(v.get<std::string>());
  } catch (const InputError& e) {
    w.fail(e.what());
  }
}

const ScheduleInfo* Codec<const ScheduleInfo*>::read(const json& v, const Where& w) {
  try {
    return &find_schedule(v.get<std::string>());
  } catch (const InputError& e) {
    w.fail(e.what());
  }
}

Afs Codec<Afs>::read(const json& v, const Where& w) {
  if (v.is_boolean()) return v.get<bool>() ? Afs::plain : Afs::off;
  if (v == "mean") return Afs::mean;
  w.fail("expected true, false or \"mean\", got " + v.dump());
}

json Codec<Afs>::write(Afs v) {
  if (v == Afs::mean) return "mean";
  return v == Afs::plain;
}

Space Codec<Space>::read(const json& v, const Where& w) {
  for (Space s : {Space::sigma, Space::time})
    if (v == space_name(s)) return s;
  w.fail("expected \"sigma\" or \"time\", got " + v.dump());
}

LastInterval Codec<LastInterval>::read(const json& v, const Where& w) {
  if (v == "base") return LastInterval::base;
  if (v == "learned") return LastInterval::learned;
  w.fail("expected \"base\" or \"learned\", got " + v.dump());
}

Labels Codec<Labels>::read(const json& v, const Where& w) {
  if (v.is_string()) {
    const std::string rule = v.get<std::string>();
    if (rule == "cycle") return {Labels::Rule::cycle, {}};
    if (rule == "random") return {Labels::Rule::random, {}};
    w.fail("expected a list of class indices, \"cycle\" or \"random\", got \"" + rule + "\"");
  }
  Labels l{Labels::Rule::list, {}};
  for (size_t i = 0; i < v.size(); ++i) l.list.push_back(fitting_integer<int64_t>(v[i], w.at(std::to_string(i))));
  if (l.list.empty()) w.fail("is an empty list: give at least one class (the list repeats over the samples)");
  return l;
}

json Codec<Labels>::write(const Labels& v) {
  switch (v.rule) {
    case Labels::Rule::none: return nullptr;
    case Labels::Rule::list: return v.list;
    case Labels::Rule::cycle: return "cycle";
    case Labels::Rule::random: return "random";
  }
  return nullptr;
}

}  // namespace config_table

namespace {
std::string no_time_space(const SolverInfo& info) {
  std::string takers;
  for (const auto& s : solvers())
    if (s.in_time) takers += (takers.empty() ? "" : ", ") + s.name;
  return "solver '" + info.name + "' is an exponential integrator: it integrates in lambda = -log(sigma/alpha), "
         "which has no counterpart in the model's time, so it has no \"time\" space; use \"sigma\", or one of " +
         takers;
}
}  // namespace

at::ScalarType SolverConfig::state_dtype() const { return parse_dtype(precision); }

std::string with_nfe(std::string path, int nfe) {
  for (auto at = path.find("{nfe}"); at != std::string::npos; at = path.find("{nfe}")) path.replace(at, 5, std::to_string(nfe));
  return path;
}

const char* space_name(Space s) { return s == Space::time ? "time" : "sigma"; }

Space default_space(const SolverInfo& solver, const Process& process) {
  return process.name() == "flow" && solver.in_time && !solver.learned ? Space::time : Space::sigma;
}

Space resolve_space(const SolverConfig& s, const Process& process, const Where& where) {
  if (!s.space) return default_space(s.info(), process);
  if (*s.space == Space::time && !s.info().in_time) where.at("space").fail(no_time_space(s.info()));
  if (*s.space == Space::time && process.timesteps() > 0)
    where.at("space").fail("a discrete process has no smooth time to integrate in: its sigma is log-linear "
                           "between trained timesteps, so the ODE in the timestep index has a kink at each one; "
                           "use \"sigma\"");
  return *s.space;
}


namespace {

// A string key whose value is one of `names` (messages: "unknown WHAT 'x' (did you mean ...)").
Check<std::string> one_of(const char* what, std::vector<std::string> names) {
  return [what, names](const std::string& v, const json&, const Where& w) {
    if (std::find(names.begin(), names.end(), v) == names.end()) w.fail(unknown_name_message(what, v, names));
  };
}
// A check of T applied to an optional T's value (an unset one is never checked).
template <class T>
Check<std::optional<T>> optional_of(Check<T> check) {
  return [check](const std::optional<T>& v, const json& given, const Where& w) { check(*v, given, w); };
}
Check<double> in_unit_interval() {
  return [](const double& v, const json& given, const Where& w) {
    if (!(v >= 0 && v < 1)) w.fail("must be in [0, 1), got " + given.dump());
  };
}
Check<const SolverInfo*> training_free(const char* role) {
  return [role](const SolverInfo* const& s, const json&, const Where& w) {
    if (s->learned) w.fail(std::string("the ") + role + " must be a training-free solver, got '" + s->name + "'");
  };
}

// ---- the tables: one entry per key ----

const std::vector<Field<ModelConfig>>& model_fields() {
  using S = ModelConfig;
  static const std::vector<Field<S>> f = [] {
    std::vector<Field<S>> out = {
        required_key<S>("path", &S::path, "the TorchScript model file"),
        key<S>("device", &S::device, "\"cpu\", \"cuda\" or \"cuda:N\"",
               [](const std::string& v, const json&, const Where& w) {
                 if (v != "cpu" && v.rfind("cuda", 0) != 0)
                   w.fail("expected \"cpu\", \"cuda\" or \"cuda:N\", got \"" + v + "\"");
               }),
        key<S>("threads", &S::threads, "intra-op threads; 0 = all cores", in_range(0, 1024, " (0 = all cores)")),
        key<S>("dtype", &S::dtype, "dtype of the model calls",
               one_of("dtype", {"float32", "float64", "float16", "bfloat16"})),
    };
    for (const KeyInfo& meta : model_metadata_keys()) {  // DESIGN.md §5: override the archive's metadata
      const std::string k = meta.key;
      out.push_back({meta, [k](S& s, const json& v, const Where&) { s.overrides[k] = v; },
                     [k](const S& s, json& o) {
                       if (s.overrides.contains(k)) o[k] = s.overrides[k];
                     }});
    }
    return out;
  }();
  return f;
}

// The solver keys; a compared solver has no steps / nfe (compare.nfe gives those).
std::vector<Field<SolverConfig>> solver_field_list(bool with_steps) {
  using S = SolverConfig;
  std::vector<Field<S>> f = {key<S>("name", &S::solver, "the solver (diffode solvers)")};
  if (with_steps) {
    f.push_back(key<S>("steps", &S::steps, "grid intervals N", optional_of(in_range(1, kMaxSteps))));
    f.push_back(key<S>("nfe", &S::nfe, "target model evaluations per sample (N and AFS chosen to hit it)",
                       optional_of(in_range(1, kMaxSteps))));
  }
  f.push_back(key<S>("afs", &S::afs,
                     "analytical first step: true (D ~ 0), \"mean\" (D ~ the class mean) or false "
                     "(unset: off unless a target nfe needs it)"));
  f.push_back(key<S>("space", &S::space,
                     "integrate in \"sigma\" (x/alpha over sigma/alpha) or \"time\" (x over the model's t; "
                     "unset: time for a flow model where the solver takes it)"));
  f.push_back(key<S>("precision", &S::precision, "dtype of the solver state", one_of("precision", {"float32", "float64"})));
  f.push_back(key<S>("max_order", &S::max_order, "multistep order cap; 0 = the solver's default"));
  f.push_back(key<S>("predictor", &S::predictor, "AMED solvers: the distilled step predictor file"));
  f.push_back(key<S>("last_interval", &S::last_interval,
                     "AMED solvers, a grid ending at sigma 0: \"base\" (the base solver's step into 0) or "
                     "\"learned\" (a learned point s = (1 - r) sigma_i there too; one NFE more)"));
  return f;
}
const std::vector<Field<SolverConfig>>& solver_fields(bool with_steps) {
  static const auto with = solver_field_list(true), without = solver_field_list(false);
  return with_steps ? with : without;
}

// Whether `key` is a parameter of some schedule (ScheduleInfo::params).
bool is_schedule_param(const std::string& key) {
  const auto& all = schedules();
  return std::any_of(all.begin(), all.end(), [&key](const ScheduleInfo& s) { return s.takes(key); });
}

// A schedule parameter's key: written back only for a schedule that takes it, so that a
// default (beta_min, ...) is neither in another schedule's run identity nor refused there.
Field<ScheduleConfig> schedule_param(Field<ScheduleConfig> f) {
  f.write = [write = f.write, key = f.info.key](const ScheduleConfig& s, json& out) {
    if (s.schedule->takes(key)) write(s, out);
  };
  return f;
}

const std::vector<Field<ScheduleConfig>>& schedule_fields() {
  using S = ScheduleConfig;
  static const std::vector<Field<S>> f = {
      key<S>("name", &S::schedule, "the sigma schedule (diffode schedules)"),
      schedule_param(key<S>("rho", &S::rho, "polynomial, time_uniform: the exponent (unset: the schedule's default)")),
      schedule_param(key<S>("sigmas", &S::sigmas, "custom: the decreasing sigma grid")),
      schedule_param(key<S>("beta_min", &S::beta_min, "vp_time: the VP process's beta at t = 0", positive())),
      schedule_param(key<S>("beta_max", &S::beta_max, "vp_time: the VP process's beta at t = 1 (> beta_min)",
                            positive())),
      schedule_param(key<S>("offset", &S::offset,
                            "leading: added to every timestep (diffusers' steps_offset; 1 for Stable Diffusion "
                            "1.x-2.x)", in_range(0, kMaxSteps))),
      schedule_param(key<S>("sigma_min", &S::sigma_min,
                            "polynomial, logsnr, time_uniform, vp_time: the grid's last sigma (unset: "
                            "model.sigma_min)", optional_of(at_least(0.0)))),
      key<S>("denoise_to_zero", &S::denoise_to_zero, "one more model call at sigma_min returning D (+1 NFE)"),
      schedule_param(key<S>("path", &S::path, "tuned: the grid file diffode tune wrote")),
  };
  return f;
}

const std::vector<Field<SamplingConfig>>& sampling_fields() {
  using S = SamplingConfig;
  static const std::vector<Field<S>> f = {
      // Bounded so that seed + k and the batch arithmetic cannot overflow.
      key<S>("num_samples", &S::num_samples, "samples in the run", in_range<int64_t>(1, int64_t{1} << 40)),
      key<S>("batch_size", &S::batch_size, "samples per model call", in_range<int64_t>(1, int64_t{1} << 20)),
      key<S>("seed", &S::seed, "sample k uses seed + k", in_range<int64_t>(0, int64_t{1} << 62)),
      key<S>("labels", &S::labels, "class labels: a list (repeated), \"cycle\" or \"random\""),
      key<S>("guidance", &S::guidance, "classifier-free guidance w; 1 = none"),
  };
  return f;
}

const std::vector<Field<DistillConfig>>& distill_fields() {
  using S = DistillConfig;
  static const std::vector<Field<S>> f = {
      key<S>("teacher", &S::teacher, "a training-free solver on the refined grid", training_free("teacher")),
      key<S>("teacher_points", &S::teacher_points, "M: extra teacher points per student interval", at_least(1)),
      key<S>("trajectories", &S::trajectories, "training trajectories", at_least<int64_t>(1)),
      key<S>("validation", &S::validation, "held-out trajectories for the best-so-far choice", at_least<int64_t>(1)),
      key<S>("batch_size", &S::batch_size, "trajectories per optimizer step", at_least<int64_t>(1)),
      key<S>("iterations", &S::iterations, "optimizer steps in all", at_least<int64_t>(0)),
      key<S>("eval_every", &S::eval_every, "validate every this many iterations", at_least<int64_t>(1)),
      key<S>("lr", &S::lr, "Adam's learning rate", positive()),
      key<S>("seed", &S::seed, "first distillation seed (far from the sampling seeds)", at_least<int64_t>(0)),
      key<S>("scale_dir", &S::scale_dir, "c in [1 - scale_dir, 1 + scale_dir]", in_unit_interval()),
      key<S>("scale_time", &S::scale_time, "a in [1 - scale_time, 1 + scale_time]", in_unit_interval()),
      key<S>("normalize", &S::normalize,
             "the loss in x/sqrt(1 + sigma^2), the data's scale at every sigma (false: in x as sampled)"),
      key<S>("last_weight", &S::last_weight, "weight of the last interval's loss (the others 1)", positive()),
  };
  return f;
}

const std::vector<Field<TuneConfig>>& tune_fields() {
  using S = TuneConfig;
  static const std::vector<Field<S>> f = {
      key<S>("points", &S::points, "K: candidate grid points (the schedule at K steps)", in_range(1, 4096)),
      key<S>("trajectories", &S::trajectories, "teacher trajectories", at_least<int64_t>(1)),
      key<S>("seed", &S::seed, "first teacher seed (far from the sampling seeds)", at_least<int64_t>(0)),
      key<S>("teacher", &S::teacher, "a training-free solver on the candidate grid", training_free("teacher")),
      key<S>("teacher_points", &S::teacher_points, "M: extra teacher points per candidate interval", at_least(0)),
      key<S>("refine", &S::refine, "trajectories whose end error refines the grid (0: the DP's grid as it is)",
             optional_of(at_least<int64_t>(0))),
  };
  return f;
}

const std::vector<Field<EvalConfig>>& eval_fields() {
  using S = EvalConfig;
  static const std::vector<Field<S>> f = {
      required_key<S>("features", &S::features, "a feature model with features(x)"),
      required_key<S>("stats", &S::stats, "its reference statistics (diffode stats)"),
  };
  return f;
}

const std::vector<Field<ReferenceConfig>>& reference_fields() {
  using S = ReferenceConfig;
  static const std::vector<Field<S>> f = {
      key<S>("name", &S::solver, "the reference solver", training_free("reference")),
      key<S>("steps", &S::steps, "its steps (checked against half as many)", in_range(2, kMaxSteps)),
      key<S>("tolerance", &S::tolerance, "largest RMSE to the half-step solution", positive()),
  };
  return f;
}

const std::vector<Field<OutputConfig>>& output_fields() {
  using S = OutputConfig;
  static const std::vector<Field<S>> f = {
      key<S>("dir", &S::dir, "run directory (unset: runs/<config name>)"),
      key<S>("grid_cols", &S::grid_cols, "columns of grid.png", at_least(1)),
      key<S>("grid_max", &S::grid_max, "at most this many samples in grid.png", at_least(0)),
      key<S>("png", &S::png, "write samples/<seed>.png"),
      key<S>("npy", &S::npy, "write samples.npy"),
  };
  return f;
}

// ---- checks across the keys of a section ----


void check_solver(const SolverConfig& s, const Where& w) {
  const SolverInfo& info = s.info();
  if (s.steps && s.nfe)
    w.fail("give either \"steps\" or \"nfe\", not both (steps " + std::to_string(*s.steps) + ", nfe " +
           std::to_string(*s.nfe) + ")");
  if (s.max_order != 0) {
    if (info.default_max_order == 0) w.at("max_order").fail("solver '" + info.name + "' has no max_order");
    if (s.max_order < 1 || s.max_order > info.default_max_order)
      w.at("max_order").fail("must be in [1, " + std::to_string(info.default_max_order) + "] for '" + info.name +
                             "', got " + std::to_string(s.max_order));
  }
  if (s.predictor && !info.learned)
    w.at("predictor").fail("solver '" + info.name + "' takes no predictor (only the AMED solvers do)");
  if (s.space == Space::time && !info.in_time) w.at("space").fail(no_time_space(info));
  if (s.last_interval && !info.learned)
    w.at("last_interval").fail("solver '" + info.name + "' learns no step (only the AMED solvers do)");
}

SolverConfig parse_solver(const json& obj, const Where& w, bool with_steps) {
  SolverConfig s = read_section(obj, solver_fields(with_steps), w);
  check_solver(s, w);
  return s;
}

// The grid of a tuned schedule from the file `diffode tune` wrote (its record kept for
// check_tuned once the model and plan are known).
ScheduleConfig read_tuned(ScheduleConfig s, const Where& w) {
  const Where at = w.at("path");
  if (s.path.empty()) at.fail("schedule 'tuned' needs the file diffode tune wrote");
  try {
    TunedGrid tuned = read_tuned_grid(s.path);
    s.sigmas = std::move(tuned.sigmas);
    s.tuned = std::move(tuned.record);
  } catch (const InputError& e) {
    at.fail(e.what());
  }
  return s;
}

ScheduleConfig parse_schedule(const json& obj, const Where& w) {
  ScheduleConfig s = read_section(obj, schedule_fields(), w);
  const ScheduleInfo& info = *s.schedule;
  for (const auto& f : schedule_fields()) {
    const std::string& p = f.info.key;
    if (obj.contains(p) && is_schedule_param(p) && !info.takes(p))
      w.at(p).fail("schedule '" + info.name + "' takes no '" + p + "'");
  }
  if (s.rho && !(*s.rho > 0)) w.at("rho").fail("must be > 0, got " + obj["rho"].dump());
  if (info.takes("beta_max") && !(s.beta_max > s.beta_min))
    w.at(obj.contains("beta_max") ? "beta_max" : "beta_min")
        .fail("beta_max must be > beta_min, got beta_min " + json(s.beta_min).dump() + ", beta_max " +
              json(s.beta_max).dump());
  if (info.takes("path")) return read_tuned(std::move(s), w);
  if (!info.takes("sigmas")) return s;
  if (!obj.contains("sigmas")) w.at("sigmas").fail("schedule '" + info.name + "' needs a list of sigmas");
  const auto& sg = s.sigmas;
  if (sg.size() < 2) w.at("sigmas").fail("needs at least 2 values (one step), got " + obj["sigmas"].dump());
  for (size_t i = 0; i < sg.size(); ++i) {
    const Where at = w.at("sigmas").at(std::to_string(i));
    if (sg[i] < 0) at.fail("must be >= 0, got " + std::to_string(sg[i]));
    if (i && !(sg[i] < sg[i - 1]))
      at.fail("sigmas must strictly decrease, but " + std::to_string(sg[i]) + " follows " + std::to_string(sg[i - 1]));
  }
  return s;
}

CompareConfig parse_compare(const json& obj, const Where& w) {
  CompareConfig c;
  c.nfe = Codec<std::vector<int>>::read(obj["nfe"], w.at("nfe"));
  if (c.nfe.empty()) w.at("nfe").fail("is an empty list: give the NFEs to compare at, e.g. [5, 10, 20]");
  for (size_t i = 0; i < c.nfe.size(); ++i)
    in_range(1, kMaxSteps)(c.nfe[i], obj["nfe"][i], w.at("nfe").at(std::to_string(i)));
  if (obj["solvers"].empty()) w.at("solvers").fail("is an empty list: give the solvers to compare");
  std::vector<std::string> labels;
  for (size_t i = 0; i < obj["solvers"].size(); ++i) {
    const json& e = obj["solvers"][i];
    const Where at = w.at("solvers").at(std::to_string(i));
    ComparedSolver s{e.contains("label") ? std::optional(e["label"].get<std::string>()) : std::nullopt,
                     parse_solver(e, at, false), e.value("schedule", json())};
    // checked now unless it names a file per NFE (read per cell)
    if (!s.schedule.is_null() && s.schedule.value("path", "").find("{nfe}") == std::string::npos)
      parse_schedule(s.schedule, at.at("schedule"));
    if (std::find(labels.begin(), labels.end(), s.name()) != labels.end())
      at.fail("label '" + s.name() + "' is used twice: give each compared solver its own \"label\"");
    labels.push_back(s.name());
    c.solvers.push_back(std::move(s));
  }
  if (obj.contains("reference")) c.reference = read_section(obj["reference"], reference_fields(), w.at("reference"));
  if (obj.contains("grid_samples")) {
    c.grid_samples = fitting_integer<int>(obj["grid_samples"], w.at("grid_samples"));
    at_least(0)(c.grid_samples, obj["grid_samples"], w.at("grid_samples"));
  }
  return c;
}

json write_compare(const CompareConfig& c) {
  json solvers = json::array();
  for (const auto& s : c.solvers) {
    json o = write_section(s.solver, solver_fields(false));
    if (s.label) o["label"] = *s.label;
    if (!s.schedule.is_null()) o["schedule"] = s.schedule;
    solvers.push_back(o);
  }
  return {{"solvers", solvers},
          {"nfe", c.nfe},
          {"reference", write_section(c.reference, reference_fields())},
          {"grid_samples", c.grid_samples}};
}

std::vector<KeyInfo> compare_schema() {
  std::vector<KeyInfo> solver = {{"label", Kind::String, nullptr, "the solver's name in tables and plots"}};
  for (const auto& k : schema_of(solver_fields(false))) solver.push_back(k);
  solver.push_back({"schedule", Kind::Object, nullptr,
                    "its own schedule (default: the config's); {nfe} in a tuned path becomes the cell's NFE", false,
                    schema_of(schedule_fields())});
  return {{"solvers", Kind::ObjectList, nullptr, "the compared solvers: solver keys but steps/nfe, a label, a schedule", true,
           solver},
          {"nfe", Kind::IntList, nullptr, "target NFEs (each cell: the largest reachable NFE <= target)", true},
          {"reference", Kind::Object, json::object(), "the reference solution", false, schema_of(reference_fields())},
          {"grid_samples", Kind::Int, CompareConfig{}.grid_samples, "columns of compare_grid.png"}};
}

}  // namespace

ScheduleConfig compare_schedule(const Config& cfg, const ComparedSolver& s, int nfe, const std::string& where) {
  if (s.schedule.is_null()) return cfg.schedule;
  json j = s.schedule;
  if (j.contains("path")) {
    j["path"] = with_nfe(j["path"].get<std::string>(), nfe);
  }
  return parse_schedule(j, Where{cfg.source, where + "/schedule"});
}

const std::vector<KeyInfo>& config_keys() {
  static const std::vector<KeyInfo> keys = {
      {"model", Kind::Object, nullptr, "the model and its metadata overrides", true, schema_of(model_fields())},
      {"solver", Kind::Object, json::object(), "the solver and its steps or NFE", false, schema_of(solver_fields(true))},
      {"schedule", Kind::Object, json::object(), "the sigma grid", false, schema_of(schedule_fields())},
      {"sampling", Kind::Object, json::object(), "samples, seeds, labels, guidance", false,
       schema_of(sampling_fields())},
      {"distill", Kind::Object, json::object(), "AMED predictor distillation", false, schema_of(distill_fields())},
      {"tune", Kind::Object, nullptr, "diffode tune: the time-grid search", false, schema_of(tune_fields())},
      {"compare", Kind::Object, nullptr, "diffode compare: solvers x NFE", false, compare_schema()},
      {"eval", Kind::Object, nullptr, "quality measures on the samples", false, schema_of(eval_fields())},
      {"output", Kind::Object, json::object(), "the run directory's files", false, schema_of(output_fields())},
  };
  return keys;
}

json to_json(const SolverConfig& s) { return write_section(s, solver_fields(true)); }
json to_json(const Labels& l) { return Codec<Labels>::write(l); }
json to_json(const DistillConfig& d) { return write_section(d, distill_fields()); }
json to_json(const TuneConfig& t) { return write_section(t, tune_fields()); }

json to_json(const Config& c) {
  json j = {{"model", write_section(c.model, model_fields())},
            {"solver", to_json(c.solver)},
            {"schedule", write_section(c.schedule, schedule_fields())},
            {"sampling", write_section(c.sampling, sampling_fields())},
            {"distill", to_json(c.distill)},
            {"output", write_section(c.output, output_fields())}};
  if (c.compare) j["compare"] = write_compare(*c.compare);
  if (c.eval) j["eval"] = write_section(*c.eval, eval_fields());
  if (c.tune) j["tune"] = to_json(*c.tune);
  return j;
}

namespace {

// Makes every relative Path value of `obj` absolute against `base`.
void resolve_paths(json& obj, const std::vector<KeyInfo>& keys, const fs::path& base) {
  if (!obj.is_object()) return;
  for (const auto& k : keys) {
    if (!obj.contains(k.key)) continue;
    json& v = obj[k.key];
    if (k.kind == Kind::Object) resolve_paths(v, k.children, base);
    if (k.kind == Kind::ObjectList && v.is_array())
      for (auto& e : v) resolve_paths(e, k.children, base);
    if (k.kind == Kind::Path && v.is_string()) {
      fs::path p = v.get<std::string>();
      if (p.is_relative()) v = (base / p).lexically_normal().string();
    }
  }
}

const KeyInfo* key_at(const std::vector<std::string>& parts) {
  const std::vector<KeyInfo>* level = &config_keys();
  const KeyInfo* k = nullptr;
  for (const auto& part : parts) {
    if (!level) return nullptr;
    k = find_key(*level, part);
    if (!k) return nullptr;
    level = k->kind == Kind::Object ? &k->children : nullptr;
  }
  return k;
}

// "a.b.c" -> {"a", "b", "c"}; `what` names the key's origin in messages.
std::vector<std::string> split_key(const std::string& key, const std::string& what) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) {
    if (p.empty()) throw InputError(what + ": empty name in key '" + key + "'");
    parts.push_back(p);
  }
  if (parts.empty() || key.back() == '.') throw InputError(what + ": empty name in key '" + key + "'");
  return parts;
}

// Sets root[a][b]... = value; a relative path value resolves against `base`.
void set_value(json& root, const std::vector<std::string>& parts, json value, const fs::path& base,
               const std::string& what) {
  json* node = &root;
  std::string ptr;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    ptr += "/" + parts[i];
    json& child = (*node)[parts[i]];
    if (child.is_null()) child = json::object();
    if (!child.is_object()) throw InputError(what + ": " + ptr + " is " + describe(child) + ", not an object");
    node = &child;
  }
  if (const KeyInfo* k = key_at(parts)) {  // e.g. --set 'solver={...}' resolves the paths inside
    json wrapped = {{k->key, value}};
    resolve_paths(wrapped, {*k}, base);
    value = wrapped[k->key];
  }
  (*node)[parts.back()] = std::move(value);
}

// "key=value" of --set: the key and its value (JSON, else a plain string).
std::pair<std::string, json> parse_set(const std::string& set) {
  const auto eq = set.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("--set '" + set + "': expected KEY=VALUE, e.g. solver.name=heun");
  const std::string text = set.substr(eq + 1);
  json value;
  try {
    value = parse_bounded_json(text);
  } catch (const json::parse_error&) {
    value = text;  // not JSON: a plain string
  } catch (const std::exception&) {  // too deep, a repeated key, a number out of range: named
    value = parse_json_text(text, "--set '" + text_excerpt(set.substr(0, eq)) + "'");
  }
  return {set.substr(0, eq), value};
}

void apply_set(json& root, const std::string& set) {
  auto [key, value] = parse_set(set);
  const std::string what = "--set '" + set + "'";
  set_value(root, split_key(key, what), std::move(value), fs::current_path(), what);
}

// Every leaf key as "a.b", for suggestions.
void leaf_keys(const std::vector<KeyInfo>& keys, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& k : keys) {
    if (k.kind == Kind::Object)
      leaf_keys(k.children, prefix + k.key + ".", out);
    else
      out.push_back(prefix + k.key);
  }
}

json read_config_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const char* why = fs::exists(file) ? "cannot be read" : "does not exist";
    throw InputError("config " + file.string() + ": file " + why);
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_json_text(buf.str(), file.string());
}

// A short, file-name-safe text of a swept value: strings bare, paths by file name.
std::string value_name(const json& v) {
  const std::string out =
      safe_file_name(v.is_string() ? fs::path(v.get<std::string>()).filename().string() : v.dump());
  return out.empty() ? "_" : out;
}

// The typed config of a checked JSON config (every kind already right).
Config read_config(const json& j, const std::string& source) {
  const Where w{source, ""};
  auto section = [&j](const char* k) { return j.contains(k) ? j[k] : json::object(); };
  Config c;
  c.source = source;
  c.model = read_section(section("model"), model_fields(), w.at("model"));
  c.solver = parse_solver(section("solver"), w.at("solver"), true);
  c.distill = read_section(section("distill"), distill_fields(), w.at("distill"));
  c.schedule = parse_schedule(section("schedule"), w.at("schedule"));
  if (const auto n = fixed_steps(c.schedule); n && c.solver.steps && *c.solver.steps != *n)
    w.at("solver").at("steps").fail("the custom schedule has " + std::to_string(*n) + " steps, but steps is " +
                                    std::to_string(*c.solver.steps));
  c.sampling = read_section(section("sampling"), sampling_fields(), w.at("sampling"));
  if (j.contains("eval")) c.eval = read_section(j["eval"], eval_fields(), w.at("eval"));
  if (j.contains("tune")) c.tune = read_section(j["tune"], tune_fields(), w.at("tune"));
  if (j.contains("compare")) c.compare = parse_compare(j["compare"], w.at("compare"));
  c.output = read_section(section("output"), output_fields(), w.at("output"));
  return c;
}

// The sweep of `j` (removed from it) as (key parts, values), each value checked alone so
// that a bad one is named.
std::vector<std::pair<std::vector<std::string>, json>> sweep_axes(json& j, const std::string& source,
                                                                  const fs::path& base,
                                                                  const std::vector<std::string>& sets) {
  const json sweep = j["sweep"];
  j.erase("sweep");
  const Where w{source, "/sweep"};
  if (!sweep.is_object() || sweep.empty())
    w.fail("expected an object of KEY: [values...] (e.g. {\"solver.nfe\": [5, 10]}), got " + describe(sweep));
  std::vector<std::string> known;
  leaf_keys(config_keys(), "", known);
  std::vector<std::pair<std::vector<std::string>, json>> axes;
  for (auto it = sweep.begin(); it != sweep.end(); ++it) {
    const Where at = w.at(it.key());
    const auto parts = split_key(it.key(), source + ": " + at.pointer);
    const KeyInfo* k = key_at(parts);
    if (!k || k->kind == Kind::Object) at.fail(unknown_name_message("config key", it.key(), known));
    for (const auto& set : sets)
      if (parse_set(set).first == it.key()) at.fail("--set '" + set + "' sets a swept key; drop one of them");
    if (!it.value().is_array() || it.value().empty())
      at.fail("expected a non-empty list of values, got " + describe(it.value()));
    for (size_t i = 0; i < it.value().size(); ++i) {
      json one = j;
      set_value(one, parts, it.value()[i], base, source + ": " + at.pointer);
      try {
        parse_config(std::move(one), source, base, sets);
      } catch (const ConfigError& e) {
        const std::string inner = e.source() == source ? e.pointer() + ": " + e.detail() : e.what();
        at.at(std::to_string(i)).fail("value " + it.value()[i].dump() + ": " + inner);
      }
    }
    axes.emplace_back(parts, it.value());
  }
  return axes;
}

// The runs of one config file with a sweep: the cartesian product, the last key fastest.
void expand_sweep(json j, const fs::path& file, const std::string& prefix, const std::vector<std::string>& sets,
                  std::vector<NamedConfig>& runs) {
  const std::string source = file.string();
  const fs::path base = fs::absolute(file).parent_path();
  const auto axes = sweep_axes(j, source, base, sets);
  std::vector<size_t> index(axes.size(), 0);
  for (bool more = true; more;) {
    json point = j, values = json::object();
    std::string name = prefix;
    for (size_t a = 0; a < axes.size(); ++a) {
      const json& v = axes[a].second[index[a]];
      std::string key;
      for (const auto& p : axes[a].first) key += (key.empty() ? "" : ".") + p;
      set_value(point, axes[a].first, v, base, source + ": /sweep/" + key);
      values[key] = v;
      name += (name.empty() ? "" : "_") + axes[a].first.back() + "-" + value_name(v);
    }
    try {
      runs.push_back({name, values, parse_config(std::move(point), source, base, sets)});
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + " (in the sweep point " + values.dump() + ")");
    }
    more = false;
    for (size_t a = axes.size(); a-- > 0;) {
      if (++index[a] < axes[a].second.size()) {
        more = true;
        break;
      }
      index[a] = 0;
    }
  }
}

}  // namespace

Config load_config(const fs::path& file, const std::vector<std::string>& sets) {
  json j = read_config_file(file);
  return parse_config(std::move(j), file.string(), fs::absolute(file).parent_path(), sets);
}

std::vector<NamedConfig> load_run_set(const std::vector<fs::path>& files, const std::vector<std::string>& sets) {
  std::vector<NamedConfig> runs;
  for (const auto& file : files) {
    json j = read_config_file(file);
    const std::string prefix = files.size() > 1 ? file.stem().string() : "";
    if (j.is_object() && j.contains("sweep")) {
      expand_sweep(std::move(j), file, prefix, sets, runs);
      continue;
    }
    runs.push_back({prefix.empty() ? file.stem().string() : prefix, json::object(),
                    parse_config(std::move(j), file.string(), fs::absolute(file).parent_path(), sets)});
  }
  std::map<std::string, int> seen;  // unique directory names
  for (auto& r : runs)
    if (int n = ++seen[r.name]; n > 1) r.name += "-" + std::to_string(n);
  return runs;
}

Config parse_config(json j, const std::string& source, const fs::path& base_dir, const std::vector<std::string>& sets) {
  const Where w{source, ""};
  if (!j.is_object()) w.fail("expected an object, got " + describe(j));
  if (j.contains("sweep"))
    w.at("sweep").fail("a sweep makes several runs; 'diffode sample' and 'diffode compare' expand it, this command "
                       "takes a single run");
  resolve_paths(j, config_keys(), base_dir);
  for (const auto& s : sets) apply_set(j, s);
  check_object(j, config_keys(), source, "", false);
  return read_config(j, source);
}

}  // namespace diffode
