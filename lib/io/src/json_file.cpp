#include "diffode/io/json_file.hpp"

#include <fstream>
#include <sstream>

#include "diffode/core/input.hpp"

namespace diffode {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const fs::path& path) {
  try {
    return parse_bounded_json(read_input_file(path, "record"));
  } catch (const std::exception&) {  // not a regular file, too large, malformed, too deep, a repeated key, ...
    return nullptr;
  }
}

}  // namespace diffode
