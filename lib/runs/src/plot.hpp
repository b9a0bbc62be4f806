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

// How a series is drawn: indices into the palettes of colours (10), markers (7) and line
// styles (8), and a width level (0 unless there are more than 10 x 7 x 8 = 560 series).
// Series k gets colour k % 10, marker k % 7, line style (k / 10) % 8, width level k / 560:
// no two series share all four, and neighbours differ in colour and marker.
struct SeriesStyle {
  int colour = 0, marker = 0, line = 0, width = 0;
  bool operator==(const SeriesStyle& o) const {
    return colour == o.colour && marker == o.marker && line == o.line && width == o.width;
  }
};
std::vector<SeriesStyle> series_styles(size_t n);

// The y axis of a plot: whole decades (log10) chosen from the bulk of the data. A series
// whose largest value is over kOffScaleFactor times the median of the series' largest
// values (fewer than half the series can be) does not set the top; it is drawn clipped at
// the top edge, each clipped point marked there, and its legend label says
// "(off scale, max X)". A value that is not finite is off scale too.
constexpr double kOffScaleFactor = 10;
struct YRange {
  double lo = 0, hi = 1;           // log10 of the axis ends
  std::vector<bool> off_scale;     // per series: has points above the top
  std::vector<std::string> labels; // per series: its legend label
};
YRange choose_y_range(const std::vector<PlotSeries>& series);

// One log-log plot of `series` (line and markers each, a legend) written to `svg` and `png`
// (each whole or not at all). Throws OutputError if a file cannot be written.
void plot_loglog(const std::vector<PlotSeries>& series, const std::string& x_label, const std::string& y_label,
                 const std::string& title, const std::filesystem::path& svg, const std::filesystem::path& png);

}  // namespace diffode
