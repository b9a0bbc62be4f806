#include "markdown.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <optional>
#include <sstream>
#include <vector>

namespace diffode::cli {

namespace {

using Status = CompareRow::Status;
using Measure = std::optional<double> CompareRow::*;

// A value in `format`, or "–" when there is none.
std::string num(const std::optional<double>& v, const char* format) {
  return v ? fmt::format(fmt::runtime(format), *v) : std::string("–");
}

// " (NFE n)" for a row that sampled another NFE than its target (the largest one reachable).
std::string fallback(const CompareRow& r) {
  return r.nfe && *r.nfe != r.target_nfe ? " (NFE " + std::to_string(*r.nfe) + ")" : "";
}

// One solver's entries of one measure, at each target NFE: the value, "diverged" or "–".
void summary_entries(std::ostream& out, const std::vector<CompareRow>& rows, const std::string& label,
                     const std::vector<int>& targets, Measure measure, const char* format) {
  for (int t : targets) {
    std::string text = "–";
    for (const auto& r : rows) {
      if (r.label != label || r.target_nfe != t) continue;
      if (r.status == Status::diverged)
        text = "diverged" + fallback(r);
      else if (r.*measure)
        text = num(r.*measure, format) + fallback(r);
    }
    out << " " << text << " |";
  }
}

// One row per solver: RMSE (and FD) at each target NFE, both in the order the rows first name them.
void summary_table(std::ostream& out, const std::vector<CompareRow>& rows, bool fd) {
  std::vector<std::string> labels;
  std::vector<int> targets;
  for (const auto& r : rows) {
    if (std::find(labels.begin(), labels.end(), r.label) == labels.end()) labels.push_back(r.label);
    if (std::find(targets.begin(), targets.end(), r.target_nfe) == targets.end()) targets.push_back(r.target_nfe);
  }
  out << "| solver |";
  for (int t : targets) out << " RMSE @" << t << " |";
  if (fd)
    for (int t : targets) out << " FD @" << t << " |";
  out << "\n|---|";
  for (size_t i = 0; i < targets.size() * (fd ? 2 : 1); ++i) out << "---:|";
  out << "\n";
  for (const auto& label : labels) {
    out << "| " << label << " |";
    summary_entries(out, rows, label, targets, &CompareRow::rmse, "{:.4f}");
    if (fd) summary_entries(out, rows, label, targets, &CompareRow::frechet_distance, "{:.1f}");
    out << "\n";
  }
}

// Every cell as it was sampled: NFE (and its target when it fell back), errors, FD, time.
void cell_table(std::ostream& out, const std::vector<CompareRow>& rows, bool fd) {
  out << "| solver | NFE | RMSE | max err | PSNR (dB) |" << (fd ? " FD |" : "") << " time (s) |\n";
  out << "|---|---:|---:|---:|---:|" << (fd ? "---:|" : "") << "---:|\n";
  for (const auto& r : rows) {
    std::string nfe = r.nfe ? std::to_string(*r.nfe) : "–";
    if (r.nfe && *r.nfe != r.target_nfe) nfe += " (of " + std::to_string(r.target_nfe) + ")";
    out << "| " << r.label << " | " << nfe << " | "
        << (r.status == Status::diverged ? std::string("diverged") : num(r.rmse, "{:.4f}")) << " | "
        << num(r.max_err, "{:.3f}") << " | " << num(r.psnr, "{:.1f}") << " |"
        << (fd ? " " + num(r.frechet_distance, "{:.1f}") + " |" : "") << " " << num(r.time_s, "{:.2f}") << " |\n";
  }
}

}  // namespace

std::string compare_markdown(const CompareResult& c) {
  std::ostringstream out;
  const ReferenceInfo& ref = c.reference;
  out << "Reference: " << ref.solver << " at " << ref.steps << " steps (" << ref.nfe << " NFE); RMSE "
      << num(ref.convergence.rmse, "{:.2g}") << " to " << ref.convergence.half_steps << " steps. " << c.seeds.count
      << " samples, seeds " << c.seeds.first << "+.\n\n";
  const bool fd = c.reference_frechet_distance.has_value();  // measured with `eval`
  summary_table(out, c.rows, fd);
  out << "\nEvery cell:\n\n";
  cell_table(out, c.rows, fd);
  if (fd) out << "\nFD of the reference itself: " << num(c.reference_frechet_distance, "{:.2f}") << "\n";
  return out.str();
}

}  // namespace diffode::cli
