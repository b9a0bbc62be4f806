// Fuzz target: a config file's bytes through the JSON reader and the config parser, as
// `diffode sample -c FILE` reads them. Bad input must be an InputError (exit 2), never a
// crash, a hang or another exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "diffode/runs/config.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = diffode::parse_json_text(text, "fuzz.json");
    diffode::parse_config(j, "fuzz.json", "/nonexistent-fuzz-dir");
  } catch (const diffode::InputError&) {
  }
  return 0;
}
