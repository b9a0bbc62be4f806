// The config's keys: one table per section (key, member, one-line doc, check), the
// schema they give, and the typed config written back as JSON.
#include <algorithm>

#include "config_keys.hpp"
#include "config_tables.hpp"
#include "diffode/core/model_meta.hpp"
#include "diffode/runs/config.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace config_table {

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

}  // namespace

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
      key<S>("lr", &S::lr, "Adam's learning rate, in (0, 10]", in_open_range(0.0, 10.0)),
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

}  // namespace config_table

using namespace config_table;

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
}  // namespace diffode
