// Fuzz target: an .npy file's bytes through the reader `diffode eval` and `stats` use. Bad
// input must be an InputError, never a crash, an allocation of what the header claims, or
// another exception.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

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
    const diffode::NpyArray a = diffode::read_npy(file);
    size_t total = 1;
    for (int64_t d : a.shape) total *= static_cast<size_t>(d);
    if (total != a.data.size()) __builtin_trap();  // the values read are those the shape says
  } catch (const diffode::InputError&) {
  }
  return 0;
}
