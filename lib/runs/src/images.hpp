#pragma once
// Pictures of samples: images from tensors, tiled grids, 2-D scatter plots and text
// labels (internal to diffode::runs; PNG encoding is io's png.hpp).
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "diffode/io/png.hpp"

namespace diffode {

// An [C,H,W] (or [H,W]) sample in the data range [lo, hi] -> 8-bit image (C = 1 gray,
// 3 RGB, else channel 0).
Image to_image(const at::Tensor& sample, double lo, double hi);
bool is_image_shape(const std::vector<int64_t>& shape);
bool is_point_shape(const std::vector<int64_t>& shape);

// Images of one size tiled in rows of `cols`, 2 px apart, on white.
Image tile(const std::vector<Image>& tiles, int cols);
// 2-D samples (x0, y0, x1, y1, ...) as a scatter plot over the box [lo, hi]².
Image scatter(const std::vector<float>& xy, double lo, double hi);
// `img` enlarged `factor` times (nearest neighbour), as RGB.
Image enlarge_rgb(const Image& img, int factor);
// Draws `text` (ASCII) in black with its top-left corner at (x, y), each font pixel
// `scale` pixels wide; returns the width drawn.
int draw_text(Image& img, int x, int y, const std::string& text, int scale);
int text_width(const std::string& text, int scale);

}  // namespace diffode
