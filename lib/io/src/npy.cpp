#include "diffode/io/npy.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/io/atomic_file.hpp"

namespace diffode {

namespace fs = std::filesystem;

void write_npy(const fs::path& path, const std::vector<int64_t>& shape, const float* data) {
  size_t values = 1;
  for (auto d : shape) values *= static_cast<size_t>(d);
  AtomicFile f(path);
  f.write(npy_header(shape));
  f.write(data, values * sizeof(float));
  f.commit();
}

std::string npy_header(const std::vector<int64_t>& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + header length (2) + dict, padded with spaces to 64 bytes, ending in \n.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string h = "\x93NUMPY";
  h.push_back('\x01');
  h.push_back('\x00');
  h.push_back(static_cast<char>(dict.size() & 0xff));
  h.push_back(static_cast<char>(dict.size() >> 8));
  return h + dict;
}

NpyArray read_npy(const fs::path& path) {
  const std::string where = "array " + path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(where + ": " + (fs::exists(path) ? "cannot be read" : "does not exist"));
  char pre[10];
  if (!in.read(pre, 10) || std::string(pre, 6) != "\x93NUMPY" || pre[6] != 1)
    throw InputError(where + ": not a version 1 .npy file");
  const size_t len = static_cast<uint8_t>(pre[8]) | static_cast<size_t>(static_cast<uint8_t>(pre[9])) << 8;
  std::string header(len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(len))) throw InputError(where + ": truncated header");
  if (header.find("'descr': '<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    throw InputError(where + ": expected float32 ('<f4') in C order, header " + header);
  const auto open = header.find("'shape': (");
  const auto close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) throw InputError(where + ": header has no shape");
  NpyArray a;
  const std::string shape_text = header.substr(open, close - open + 1);
  std::stringstream dims(header.substr(open + 10, close - open - 10));
  size_t total = 1;
  for (std::string d; std::getline(dims, d, ',');) {
    if (d.find_first_not_of(' ') == std::string::npos) continue;
    const auto digits = d.find_first_not_of(' ');
    const auto end = d.find_last_not_of(' ');
    const std::string dim = d.substr(digits, end - digits + 1);
    if (dim.empty() || dim.size() > 18 || dim.find_first_not_of("0123456789") != std::string::npos)
      throw InputError(where + ": header shape " + text_excerpt(shape_text) + " is not a list of sizes");
    a.shape.push_back(std::stoll(dim));
    if (__builtin_mul_overflow(total, static_cast<size_t>(a.shape.back()), &total))
      throw InputError(where + ": header shape " + text_excerpt(shape_text) + " has more values than memory can hold");
  }
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  const uintmax_t data_start = 10 + len;
  if (ec || total > (size - std::min(size, data_start)) / sizeof(float))
    throw InputError(where + ": holds fewer values than its shape " + text_excerpt(shape_text) + " says");
  a.data.resize(total);
  if (!in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(total * sizeof(float))))
    throw InputError(where + ": holds fewer values than its shape " + text_excerpt(shape_text) + " says");
  return a;
}
}  // namespace diffode
