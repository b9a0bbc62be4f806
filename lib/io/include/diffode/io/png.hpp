#pragma once
// PNG images with a tEXt chunk (the run's settings travel with grid.png).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace diffode {

// An 8-bit image, rows top to bottom, `channels` interleaved (1 = gray, 3 = RGB).
struct Image {
  int width = 0, height = 0, channels = 1;
  std::vector<uint8_t> pixels;
};

// PNG bytes of `img`, with a tEXt chunk (keyword, text) when keyword is not empty.
std::string encode_png(const Image& img, const std::string& keyword = "", const std::string& text = "");
// The tEXt chunks of PNG bytes (keyword -> text), for checks and `diffode info`.
std::vector<std::pair<std::string, std::string>> png_text_chunks(const std::string& png);

}  // namespace diffode
