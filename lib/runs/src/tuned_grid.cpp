#include "diffode/runs/tuned_grid.hpp"

#include <cmath>

#include "diffode/core/error.hpp"
#include "diffode/core/plan_check.hpp"
#include "diffode/core/input.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

TunedGrid read_tuned_grid(const fs::path& path) {
  TunedGrid t;
  try {
    t.record = parse_bounded_json(read_input_file(path, "tuned grid"));
  } catch (const InputError&) {
    throw;
  } catch (const std::exception&) {  // malformed JSON: not a tuned grid (below)
  }
  const json& rec = t.record;
  if (!rec.is_object() || rec.value("kind", json()) != "diffode_tuned_grid" || !rec.contains("sigmas") ||
      !rec["sigmas"].is_array() || rec["sigmas"].size() < 2)
    throw InputError(path.string() + " is not a tuned grid written by diffode tune (kind \"diffode_tuned_grid\" with sigmas)");
  for (size_t i = 0; i < rec["sigmas"].size(); ++i) {
    const json& v = rec["sigmas"][i];
    const double x = v == "inf" && i == 0 ? INFINITY : v.is_number() ? v.get<double>() : NAN;
    if (!(x >= 0) || (i && !(x < t.sigmas.back())))
      throw InputError(path.string() + ": sigmas/" + std::to_string(i) + ": " + v.dump() +
                       " is not part of a strictly decreasing grid of values >= 0");
    t.sigmas.push_back(x);
  }
  return t;
}

json tuned_max_order(const SolverConfig& s) {
  const int cap = s.info().default_max_order;
  if (cap == 0) return nullptr;
  return s.max_order ? s.max_order : cap;
}

void check_tuned(const json& record, const fs::path& file, const TunedUse& use) {
  PlanCheck check(record);
  check.differs("model_sha256", use.model_sha256, "model sha256");
  check.differs("solver", use.solver, "solver");
  check.differs("max_order", use.max_order, "max_order");
  check.differs("nfe", use.nfe, "NFE");
  check.differs("afs", use.afs, "afs");
  check.differs("space", use.space, "space");
  check.throw_if_any("tuned grid " + file.string() + " was tuned", "tune one for this setting with 'diffode tune'");
}

}  // namespace diffode
