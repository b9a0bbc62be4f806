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
constexpr int kLineColours = 10;

void draw(const std::vector<PlotSeries>& series, const std::string& x_label, const std::string& y_label,
          const std::string& title, const char* device, const fs::path& file) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (s.x[i] > 0 && s.y[i] > 0 && std::isfinite(s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]);
        x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]);
        y_hi = std::max(y_hi, s.y[i]);
      }
  if (!std::isfinite(x_lo)) x_lo = y_lo = 1, x_hi = y_hi = 10;
  // Whole decades around the data, a little margin on x.
  const double lx0 = std::log10(x_lo) - 0.05, lx1 = std::log10(x_hi) + 0.05;
  const double ly0 = std::floor(std::log10(y_lo) + 1e-9), ly1 = std::max(ly0 + 1, std::ceil(std::log10(y_hi) - 1e-9));

  plstream pls;
  pls.sdev(device);
  pls.sfnam(file.c_str());
  pls.spage(0, 0, 900, 600, 0, 0);
  pls.scmap0(kRed, kGreen, kBlue, 2 + kLineColours);
  pls.init();
  pls.col0(1);
  pls.schr(0, 0.9);
  pls.adv(0);
  pls.vpor(0.09, 0.74, 0.12, 0.9);  // the legend goes to the right of the axes, off the data
  pls.wind(lx0, lx1, ly0, ly1);
  // Log axes; x is labelled at the data's own values (NFEs are few and small), y by decades.
  pls.box("bclst", 0, 0, "bcnlstv", 0, 0);
  std::vector<double> xs;
  for (const auto& s : series)
    for (double x : s.x)
      if (x > 0 && std::find(xs.begin(), xs.end(), x) == xs.end()) xs.push_back(x);
  for (double x : xs) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", x);
    pls.mtex("b", 1.5, (std::log10(x) - lx0) / (lx1 - lx0), 0.5, text);
  }
  pls.lab(x_label.c_str(), y_label.c_str(), title.c_str());
  std::vector<PLINT> opts, colours, markers_n;
  std::vector<PLFLT> widths, scales;
  std::vector<const char*> texts, markers;
  std::vector<PLINT> styles;
  static const char* kMarkers[] = {"#(840)", "#(841)", "#(842)", "#(843)", "#(844)"};  // Hershey: circle, square...
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    std::vector<PLFLT> lx, ly;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (s.x[i] > 0 && s.y[i] > 0 && std::isfinite(s.y[i])) {
        lx.push_back(std::log10(s.x[i]));
        ly.push_back(std::log10(s.y[i]));
      }
    const PLINT colour = 2 + static_cast<PLINT>(k % kLineColours);
    pls.col0(colour);
    pls.width(2);
    if (lx.size() > 1) pls.line(static_cast<PLINT>(lx.size()), lx.data(), ly.data());
    pls.width(1);
    if (!lx.empty()) pls.string(static_cast<PLINT>(lx.size()), lx.data(), ly.data(), kMarkers[k % 5]);
    opts.push_back(PL_LEGEND_LINE | PL_LEGEND_SYMBOL);
    colours.push_back(colour);
    styles.push_back(1);
    widths.push_back(2);
    scales.push_back(1);
    markers_n.push_back(1);
    texts.push_back(s.label.c_str());
    markers.push_back(kMarkers[k % 5]);
  }
  if (!series.empty()) {
    PLFLT w = 0, h = 0;
    std::vector<PLINT> text_colours(series.size(), 1);
    pls.col0(1);
    pls.legend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE,
               0.02, 0.0,
               0.08, 0, 1, 1, 0, 0, static_cast<PLINT>(series.size()), opts.data(), 0.8, 0.8, 2.0, 0.0,
               text_colours.data(), texts.data(), nullptr, nullptr, nullptr, nullptr, colours.data(), styles.data(),
               widths.data(), colours.data(), scales.data(), markers_n.data(), markers.data());
  }
}

}  // namespace

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
