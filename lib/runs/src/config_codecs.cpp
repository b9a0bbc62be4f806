// How config values are read and written (codecs per member type) and the space policy.
#include <algorithm>

#include "config_keys.hpp"
#include "config_tables.hpp"
#include "diffode/core/dtype.hpp"
#include "diffode/runs/config.hpp"

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

std::string config_table::no_time_space(const SolverInfo& info) {
  std::string takers;
  for (const auto& s : solvers())
    if (s.in_time) takers += (takers.empty() ? "" : ", ") + s.name;
  return "solver '" + info.name + "' is an exponential integrator: it integrates in lambda = -log(sigma/alpha), "
         "which has no counterpart in the model's time, so it has no \"time\" space; use \"sigma\", or one of " +
         takers;
}

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

}  // namespace diffode
