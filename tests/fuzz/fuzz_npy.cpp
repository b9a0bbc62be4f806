// Fuzz target: an .npy file's bytes through the reader `diffode eval` and `stats` use, and
// the same bytes as a header dict through its strict parser. Bad input must be an
// InputError, never a crash, an allocation of what the header claims, or another exception;
// a dict the parser accepts gives the shape that diffode's own header for it gives.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "diffode/core/error.hpp"
#include "diffode/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("diffode-fuzz-" + std::to_string(::getpid()) + ".npy");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const std::string dict(reinterpret_cast<const char*>(data), size);
    const std::vector<int64_t> shape = diffode::parse_npy_header(dict, "fuzz");
    for (int64_t d : shape)
      if (d < 0) __builtin_trap();
    if (diffode::parse_npy_header(diffode::npy_header(shape).substr(10), "fuzz") != shape) __builtin_trap();
  } catch (const diffode::InputError&) {
  }
  try {
    const diffode::NpyArray a = diffode::read_npy(file);
    size_t total = 1;
    for (int64_t d : a.shape) total *= static_cast<size_t>(d);
    if (total != a.data.size()) __builtin_trap();  // the values read are those the shape says
  } catch (const diffode::InputError&) {
  }
  return 0;
}
