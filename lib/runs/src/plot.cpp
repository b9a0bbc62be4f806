#include "plot.hpp"

#include <plplot/plstream.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <limits>

#include "diffode/core/error.hpp"
#include "diffode/io/atomic_file.hpp"

namespace diffode {

namespace fs = std::filesystem;

namespace {

// Colour map 0: white background, black frame and text, then ten distinct line colours.
const PLINT kRed[] = {255, 0, 31, 255, 44, 214, 148, 140, 227, 127, 188, 23};
const PLINT kGreen[] = {255, 0, 119, 127, 160, 39, 103, 86, 119, 127, 189, 190};
const PLINT kBlue[] = {255, 0, 180, 14, 44, 40, 189, 75, 194, 127, 34, 207};
constexpr int kColours = 10;
// Hershey glyphs: circle, square, triangle, diamond, star, cross, plus; a clipped point is a
// filled triangle at the top edge.
const char* const kMarkers[] = {"#(840)", "#(841)", "#(842)", "#(843)", "#(844)", "#(846)", "#(845)"};
constexpr int kMarkerCount = 7;
constexpr int kLineStyles = 8;  // PLplot's pllsty 1..8
const char* const kClipped = "#(852)";

constexpr double kCharMm = 5.29;  // PLplot's default character height on a 900 x 600 page

bool drawn(double x, double y) { return x > 0 && (y > 0 || !std::isfinite(y)) && !std::isnan(x); }

// The page: 900 x 600 pixels, wider when the legend needs it (an estimate from the labels'
// lengths; the plot area then takes what the measured legend leaves).
struct Layout {
  PLINT width = 900, columns = 1, rows = 0;
};
Layout layout_for(const std::vector<std::string>& labels) {
  Layout l;
  size_t longest = 0;
  for (const auto& t : labels) longest = std::max(longest, t.size());
  constexpr PLINT kRowsPerColumn = 18;  // entries of about 30 pixels (kCharMm, spacing 2) on 600
  l.columns = std::max<PLINT>(1, (static_cast<PLINT>(labels.size()) + kRowsPerColumn - 1) / kRowsPerColumn);
  l.rows = (static_cast<PLINT>(labels.size()) + l.columns - 1) / l.columns;
  const PLINT legend_px = l.columns * (120 + 11 * static_cast<PLINT>(longest));  // 10 pixels a character, and more
  l.width = std::max<PLINT>(900, 600 + legend_px);
  return l;
}

// The legend, at the right edge of the page; returns its width as a fraction of the page.
double draw_legend(plstream& pls, const std::vector<SeriesStyle>& styles, const YRange& range, const Layout& layout) {
  const size_t n = styles.size();
  std::vector<PLINT> opts(n, PL_LEGEND_LINE | PL_LEGEND_SYMBOL), colours, lines, markers_n(n, 1), text_colours(n, 1);
  std::vector<PLFLT> widths, scales(n, 1);
  std::vector<const char*> texts, markers;
  for (size_t k = 0; k < n; ++k) {
    colours.push_back(2 + styles[k].colour);
    lines.push_back(1 + styles[k].line);
    widths.push_back(2 + styles[k].width);
    texts.push_back(range.labels[k].c_str());
    markers.push_back(kMarkers[styles[k].marker]);
  }
  pls.vpor(0, 1, 0, 1);
  pls.wind(0, 1, 0, 1);
  pls.col0(1);
  PLFLT w = 0, h = 0;
  pls.legend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_RIGHT | PL_POSITION_INSIDE | PL_POSITION_SUBPAGE, 9.0 / layout.width, 0.0, 72.0 / layout.width, 0,
             1, 1, layout.rows,
             layout.columns, static_cast<PLINT>(n), opts.data(), 0.8, 0.8, 2.0, 0.0, text_colours.data(), texts.data(),
             nullptr, nullptr, nullptr, nullptr, colours.data(), lines.data(), widths.data(), colours.data(),
             scales.data(), markers_n.data(), markers.data());
  pls.lsty(1);
  return w;
}

// One series: its line (clipped at the frame), its markers, and a filled triangle at the
// top edge for each point above it.
void draw_series(plstream& pls, const PlotSeries& s, const SeriesStyle& style, const YRange& range) {
  std::vector<PLFLT> lx, ly, in_x, in_y, top_x, top_y;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!drawn(s.x[i], s.y[i])) continue;
    const double x = std::log10(s.x[i]), y = std::isfinite(s.y[i]) ? std::log10(s.y[i]) : range.hi + 1;
    lx.push_back(x);
    ly.push_back(std::min(y, range.hi + 1));  // the frame clips the line
    (y > range.hi + 1e-9 ? top_x : in_x).push_back(x);
    (y > range.hi + 1e-9 ? top_y : in_y).push_back(y > range.hi + 1e-9 ? range.hi : y);
  }
  pls.col0(2 + style.colour);
  pls.lsty(1 + style.line);
  pls.width(2 + style.width);
  if (lx.size() > 1) pls.line(static_cast<PLINT>(lx.size()), lx.data(), ly.data());
  pls.lsty(1);
  pls.width(1);
  if (!in_x.empty()) pls.string(static_cast<PLINT>(in_x.size()), in_x.data(), in_y.data(), kMarkers[style.marker]);
  if (!top_x.empty()) pls.string(static_cast<PLINT>(top_x.size()), top_x.data(), top_y.data(), kClipped);
}

void draw(const std::vector<PlotSeries>& series, const std::string& x_label, const std::string& y_label,
          const std::string& title, const char* device, const fs::path& file) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  std::vector<double> xs;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (drawn(s.x[i], s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]);
        x_hi = std::max(x_hi, s.x[i]);
        if (std::find(xs.begin(), xs.end(), s.x[i]) == xs.end()) xs.push_back(s.x[i]);
      }
  if (!std::isfinite(x_lo)) x_lo = 1, x_hi = 10;
  const double lx0 = std::log10(x_lo) - 0.05, lx1 = std::log10(x_hi) + 0.05;  // a little margin on x
  const YRange range = choose_y_range(series);
  const std::vector<SeriesStyle> styles = series_styles(series.size());
  const Layout layout = layout_for(range.labels);

  plstream pls;
  pls.sdev(device);
  pls.sfnam(file.c_str());
  pls.spage(0, 0, layout.width, 600, 0, 0);
  pls.scmap0(kRed, kGreen, kBlue, 2 + kColours);
  pls.init();
  pls.col0(1);
  pls.schr(kCharMm, 0.9);  // text of one size however wide the page (PLplot's default grows with it)
  pls.adv(0);
  const double legend = series.empty() ? 0 : draw_legend(pls, styles, range, layout);
  // The axes take the page left of the legend (90 pixels for the y label and numbers).
  pls.vpor(90.0 / layout.width, std::max(0.3, 1 - legend - 0.04), 0.12, 0.9);
  pls.wind(lx0, lx1, range.lo, range.hi);
  pls.col0(1);
  // Log axes; x is labelled at the data's own values (NFEs are few and small), y by decades.
  pls.box("bclst", 0, 0, "bcnlstv", 0, 0);
  for (double x : xs) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", x);
    pls.mtex("b", 1.5, (std::log10(x) - lx0) / (lx1 - lx0), 0.5, text);
  }
  pls.lab(x_label.c_str(), y_label.c_str(), title.c_str());
  for (size_t k = 0; k < series.size(); ++k) draw_series(pls, series[k], styles[k], range);
}

}  // namespace

std::vector<SeriesStyle> series_styles(size_t n) {
  std::vector<SeriesStyle> out;
  for (size_t k = 0; k < n; ++k)
    out.push_back({static_cast<int>(k % kColours), static_cast<int>(k % kMarkerCount),
                   static_cast<int>(k / kColours % kLineStyles),
                   static_cast<int>(k / (kColours * kMarkerCount * kLineStyles))});
  return out;
}

YRange choose_y_range(const std::vector<PlotSeries>& series) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> top(series.size(), -inf);  // each series' largest drawn value (inf: not finite)
  double lo = inf;
  for (size_t k = 0; k < series.size(); ++k)
    for (size_t i = 0; i < series[k].x.size(); ++i)
      if (drawn(series[k].x[i], series[k].y[i])) {
        const double y = std::isfinite(series[k].y[i]) ? series[k].y[i] : inf;
        top[k] = std::max(top[k], y);
        if (std::isfinite(y)) lo = std::min(lo, y);
      }
  std::vector<double> tops;
  for (double t : top)
    if (t > 0) tops.push_back(t);
  std::sort(tops.begin(), tops.end());
  const double median = tops.empty() ? inf : tops[tops.size() / 2];  // the upper median
  double hi = 0;
  for (double t : top)
    if (t > 0 && std::isfinite(t) && !(t > kOffScaleFactor * median)) hi = std::max(hi, t);
  YRange r;
  if (!std::isfinite(lo)) lo = hi = 1;
  if (hi <= 0) hi = lo;
  r.lo = std::floor(std::log10(lo) + 1e-9);
  r.hi = std::max(r.lo + 1, std::ceil(std::log10(hi) - 1e-9));
  for (size_t k = 0; k < series.size(); ++k) {
    r.off_scale.push_back(top[k] > 0 && std::log10(top[k]) > r.hi + 1e-9);
    std::string label = series[k].label;
    if (r.off_scale.back()) {
      char text[64];
      std::snprintf(text, sizeof text, " (off scale, max %.3g)", top[k]);
      label += text;
    }
    r.labels.push_back(label);
  }
  return r;
}

void plot_loglog(const std::vector<PlotSeries>& series, const std::string& x_label, const std::string& y_label,
                 const std::string& title, const fs::path& svg, const fs::path& png) {
  for (const auto& [device, file] : {std::pair<const char*, fs::path>{"svg", svg}, {"pngcairo", png}}) {
    // PLplot writes to a file name: it draws into a scratch file, whose bytes are then
    // written like every other output (temporary, fsync, rename).
    const fs::path scratch = temporary_name(file);
    draw(series, x_label, y_label, title, device, scratch);  // the plot is complete once its stream is destroyed
    std::ifstream in(scratch, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    std::error_code ec;
    fs::remove(scratch, ec);
    if (bytes.str().empty()) throw OutputError("cannot write " + file.string() + " (PLplot device " + device + ")");
    write_file_atomic(file, bytes.str());
  }
}

}  // namespace diffode
