#include "diffode/io/png.hpp"

#include <array>
#include <stdexcept>

#include "diffode/core/error.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace diffode {

namespace {

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_u32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

}  // namespace

std::string encode_png(const Image& img, const std::string& keyword, const std::string& text) {
  std::string png;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(sink, &png, img.width, img.height, img.channels, img.pixels.data(),
                              img.width * img.channels))
    throw std::runtime_error("PNG encoding failed");
  if (keyword.empty()) return png;
  // A tEXt chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
  std::string body = keyword;
  body.push_back('\0');
  body += text;
  std::string chunk;
  put_u32(chunk, static_cast<uint32_t>(body.size()));
  const std::string typed = "tEXt" + body;
  chunk += typed;
  put_u32(chunk, crc32(reinterpret_cast<const uint8_t*>(typed.data()), typed.size()));
  png.insert(8 + 25, chunk);
  return png;
}

std::vector<std::pair<std::string, std::string>> png_text_chunks(const std::string& png) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = get_u32(png, at);
    if (at + 12 + len > png.size()) break;
    const std::string type = png.substr(at + 4, 4);
    if (type == "tEXt") {
      const std::string body = png.substr(at + 8, len);
      const auto nul = body.find('\0');
      if (nul != std::string::npos) out.emplace_back(body.substr(0, nul), body.substr(nul + 1));
    }
    at += 12 + len;
  }
  return out;
}
}  // namespace diffode
