#include "diffode/io/json_file.hpp"

#include <fstream>
#include <sstream>

#include "diffode/core/input.hpp"

namespace diffode {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return parse_bounded_json(buf.str());
  } catch (const std::exception&) {  // malformed, too deep, a repeated key or a number out of range
    return nullptr;
  }
}

}  // namespace diffode
