#include "images.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace diffode {

using at::Tensor;

// An [C,H,W] sample in the data range -> 8-bit image (C = 1 gray, 3 RGB, else channel 0).
Image to_image(const Tensor& sample, double lo, double hi) {
  Tensor s = sample.dim() == 2 ? sample.unsqueeze(0) : sample;
  if (s.size(0) != 1 && s.size(0) != 3) s = s.slice(0, 0, 1);
  const Tensor u8 = ((s.to(at::kFloat) - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(at::kByte)
                        .permute({1, 2, 0}).contiguous();
  Image img{static_cast<int>(s.size(2)), static_cast<int>(s.size(1)), static_cast<int>(s.size(0)), {}};
  img.pixels.assign(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
  return img;
}

bool is_image_shape(const std::vector<int64_t>& shape) { return shape.size() == 3 || shape.size() == 2; }
bool is_point_shape(const std::vector<int64_t>& shape) { return shape.size() == 1 && shape[0] == 2; }

// Images tiled in rows of `cols`, 2 px apart.
Image tile(const std::vector<Image>& tiles, int cols) {
  const int pad = 2, n = static_cast<int>(tiles.size());
  cols = std::min(cols, n);
  const int rows = (n + cols - 1) / cols, w = tiles[0].width, h = tiles[0].height, c = tiles[0].channels;
  Image g{pad + cols * (w + pad), pad + rows * (h + pad), c, {}};
  g.pixels.assign(static_cast<size_t>(g.width) * g.height * c, 255);
  for (int k = 0; k < n; ++k) {
    const int x0 = pad + (k % cols) * (w + pad), y0 = pad + (k / cols) * (h + pad);
    for (int y = 0; y < h; ++y)
      std::copy_n(&tiles[k].pixels[static_cast<size_t>(y) * w * c], w * c,
                  &g.pixels[(static_cast<size_t>(y0 + y) * g.width + x0) * c]);
  }
  return g;
}

// 2-D samples as a scatter plot over the data range box.
Image scatter(const std::vector<float>& xy, double lo, double hi) {
  const int size = 512;
  Image img{size, size, 3, std::vector<uint8_t>(size * size * 3, 255)};
  for (int k = 0; k < size; ++k)  // axes through the origin, if inside the box
    for (int axis = 0; axis < 2; ++axis) {
      const int zero = static_cast<int>(std::lround((0 - lo) / (hi - lo) * (size - 1)));
      if (zero < 0 || zero >= size) continue;
      const int px = axis ? zero : k, py = axis ? k : size - 1 - zero;
      for (int ch = 0; ch < 3; ++ch) img.pixels[(static_cast<size_t>(py) * size + px) * 3 + ch] = 215;
    }
  for (size_t i = 0; i + 1 < xy.size(); i += 2) {
    const long px = std::lround((xy[i] - lo) / (hi - lo) * (size - 1));
    const long py = size - 1 - std::lround((xy[i + 1] - lo) / (hi - lo) * (size - 1));
    for (long dy = -1; dy <= 1; ++dy)
      for (long dx = -1; dx <= 1; ++dx) {
        const long x = px + dx, y = py + dy;
        if (x < 0 || y < 0 || x >= size || y >= size) continue;
        uint8_t* p = &img.pixels[(static_cast<size_t>(y) * size + static_cast<size_t>(x)) * 3];
        p[0] = 31;
        p[1] = 84;
        p[2] = 160;
      }
  }
  return img;
}

Image enlarge_rgb(const Image& img, int factor) {
  Image out{img.width * factor, img.height * factor, 3, {}};
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const int src_ch = img.channels == 3 ? ch : 0;
        out.pixels[(static_cast<size_t>(y) * out.width + x) * 3 + ch] =
            img.pixels[(static_cast<size_t>(y / factor) * img.width + x / factor) * img.channels + src_ch];
      }
  return out;
}

int text_width(const std::string& text, int scale) {
  std::string copy = text;
  return stb_easy_font_width(copy.data()) * scale;
}

int draw_text(Image& img, int x, int y, const std::string& text, int scale) {
  // stb_easy_font draws glyphs as axis-aligned quads (4 vertices of 16 bytes each).
  std::vector<char> buffer(text.size() * 270 + 1024);
  std::string copy = text;
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buffer.data() + q * 64);
    const float* v2 = reinterpret_cast<const float*>(buffer.data() + q * 64 + 32);
    const int x0 = x + static_cast<int>(std::lround(v0[0] * scale)), y0 = y + static_cast<int>(std::lround(v0[1] * scale));
    const int x1 = x + static_cast<int>(std::lround(v2[0] * scale)), y1 = y + static_cast<int>(std::lround(v2[1] * scale));
    for (int py = std::max(0, y0); py < std::min(img.height, y1); ++py)
      for (int px = std::max(0, x0); px < std::min(img.width, x1); ++px)
        for (int ch = 0; ch < img.channels; ++ch)
          img.pixels[(static_cast<size_t>(py) * img.width + px) * img.channels + ch] = 0;
  }
  return text_width(text, scale);
}

}  // namespace diffode
