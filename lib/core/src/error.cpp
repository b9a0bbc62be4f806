#include "diffode/core/error.hpp"

#include <algorithm>
#include <numeric>

namespace diffode {

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, name.size() / 3) + 1;  // farther than this is no suggestion
  for (const auto& c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string text_excerpt(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  return text.substr(0, max_chars) + "... (" + std::to_string(text.size()) + " characters)";
}

std::string unknown_name_message(const std::string& what, const std::string& name,
                                 const std::vector<std::string>& candidates) {
  std::string msg = "unknown " + what + " '" + text_excerpt(name) + "'";
  const std::string near = nearest_name(name, candidates);
  if (!near.empty()) msg += " (did you mean '" + near + "'?)";
  // Up to kListed names: a list of every config key (~70) would be one long line.
  constexpr size_t kListed = 24;
  msg += "; valid: ";
  for (size_t i = 0; i < candidates.size() && i < kListed; ++i) msg += (i ? ", " : "") + candidates[i];
  if (candidates.size() > kListed) msg += ", ... (" + std::to_string(candidates.size() - kListed) + " more)";
  return msg;
}

ConfigError::ConfigError(std::string source, std::string pointer, std::string detail)
    : InputError(text_excerpt(source) + ": " + (pointer.empty() ? "/" : text_excerpt(pointer)) + ": " + detail),
      source_(std::move(source)),
      pointer_(std::move(pointer)),
      detail_(std::move(detail)) {}

}  // namespace diffode
