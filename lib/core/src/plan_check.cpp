#include "diffode/core/plan_check.hpp"

#include "diffode/core/error.hpp"

namespace diffode {

using nlohmann::json;

void PlanCheck::differs(const char* key, const json& want, const std::string& what, const json& unrecorded) {
  const bool recorded = record_.is_object() && record_.contains(key);
  const json& had = recorded ? record_[key] : unrecorded;
  if (had != want)
    problem(what + " " + (recorded || !unrecorded.is_null() ? had.dump() : "(not recorded)") + " (this run: " +
            want.dump() + ")");
}

void PlanCheck::throw_if_any(const std::string& head, const std::string& advice) const {
  if (problems_.empty()) return;
  std::string msg = head + " for another setting: ";
  for (size_t i = 0; i < problems_.size(); ++i) msg += (i ? "; " : "") + problems_[i];
  throw InputError(msg + " (" + advice + ")");
}

}  // namespace diffode
