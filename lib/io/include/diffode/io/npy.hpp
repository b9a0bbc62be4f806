#pragma once
// float32 C-order .npy arrays, as numpy writes them.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace diffode {

// Writes a float32 C-order .npy file of `shape` from `data`, whole or not at all.
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);

// The header of a float32 little-endian C-order .npy array of `shape`.
std::string npy_header(const std::vector<int64_t>& shape);

// A float32 C-order .npy file (as diffode writes them). Anything else is an InputError.
struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace diffode
