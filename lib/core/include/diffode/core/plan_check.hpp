#pragma once
// Files made for one plan (an AMED predictor, a tuned grid) against the run that uses
// them: every recorded value that differs from the run's own is named in one message.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace diffode {

class PlanCheck {
 public:
  explicit PlanCheck(const nlohmann::json& record) : record_(record) {}
  // "<what> <recorded> (this run: <want>)" when the record's `key` is not `want`; a key it
  // lacks reads as `unrecorded` (shown as "(not recorded)" when that is null).
  void differs(const char* key, const nlohmann::json& want, const std::string& what,
               const nlohmann::json& unrecorded = nullptr);
  void problem(std::string text) { problems_.push_back(std::move(text)); }
  // InputError "<head> for another setting: p1; p2 (<advice>)" when anything differs.
  void throw_if_any(const std::string& head, const std::string& advice) const;
  const nlohmann::json& record() const { return record_; }

 private:
  const nlohmann::json& record_;
  std::vector<std::string> problems_;
};

}  // namespace diffode
