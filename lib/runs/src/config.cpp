// The config (DESIGN.md §7): sections read through their key tables (config_tables.cpp),
// then the checks across keys; the file, its --set overrides and relative paths.
#include "diffode/runs/config.hpp"

#include "config_keys.hpp"
#include "diffode/core/input.hpp"
#include "config_set.hpp"
#include "config_tables.hpp"
#include "diffode/runs/tuned_grid.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace config_table;

namespace {

// Every string of a config (keys too) is UTF-8, as JSON and the records a run writes must be:
// a path or --set value with other bytes is named here, not when a record is written.
void check_utf8(const json& j, const Where& w) {
  if (j.is_string() && !valid_utf8(j.get_ref<const std::string&>()))
    w.fail("is not UTF-8 text (a path or value with other bytes cannot be recorded in the run's JSON files)");
  if (j.is_array())
    for (size_t i = 0; i < j.size(); ++i) check_utf8(j[i], w.at(std::to_string(i)));
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!valid_utf8(it.key())) w.fail("holds a key that is not UTF-8 text");
    check_utf8(it.value(), w.at(it.key()));
  }
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

}  // namespace

ScheduleConfig compare_schedule(const Config& cfg, const ComparedSolver& s, int nfe, const std::string& where) {
  if (s.schedule.is_null()) return cfg.schedule;
  json j = s.schedule;
  if (j.contains("path")) {
    j["path"] = with_nfe(j["path"].get<std::string>(), nfe);
  }
  return parse_schedule(j, Where{cfg.source, where + "/schedule"});
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

Config load_config(const fs::path& file, const std::vector<std::string>& sets) {
  json j = read_config_file(file);
  return parse_config(std::move(j), file.string(), fs::absolute(file).parent_path(), sets);
}

Config parse_config(json j, const std::string& source, const fs::path& base_dir, const std::vector<std::string>& sets) {
  const Where w{source, ""};
  if (!j.is_object()) w.fail("expected an object, got " + describe(j));
  if (j.contains("sweep"))
    w.at("sweep").fail("a sweep makes several runs; 'diffode sample' and 'diffode compare' expand it, this command "
                       "takes a single run");
  resolve_paths(j, config_keys(), base_dir);
  for (const auto& s : sets) apply_set(j, s);
  check_utf8(j, Where{source, ""});
  check_object(j, config_keys(), source, "", false);
  return read_config(j, source);
}

}  // namespace diffode
