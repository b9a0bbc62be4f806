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

// The shape in an .npy version 1.0 header dict (the text after the 10-byte preamble), read
// as the Python dict literal it is: the keys 'descr' ('<f4'), 'fortran_order' (False) and
// 'shape' (a tuple of non-negative integers), each exactly once, then only whitespace.
// Anything else is an InputError "<where>: header at byte N: ...".
std::vector<int64_t> parse_npy_header(const std::string& header, const std::string& where);

}  // namespace diffode
