#pragma once
// Line plots on log axes, drawn with PLplot (internal to diffode::runs).
#include <filesystem>
#include <string>
#include <vector>

namespace diffode {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // positive values (log axes); others are left out
};

// One log-log plot of `series` (line and markers each, a legend) written to `svg` and `png`
// (each whole or not at all). Throws OutputError if a file cannot be written.
void plot_loglog(const std::vector<PlotSeries>& series, const std::string& x_label, const std::string& y_label,
                 const std::string& title, const std::filesystem::path& svg, const std::filesystem::path& png);

}  // namespace diffode
