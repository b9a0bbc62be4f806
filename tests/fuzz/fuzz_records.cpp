// Fuzz target: a run record's bytes (manifest.json, shard.json) through the checks diffode
// applies when it reads them back (sample into a run folder, eval/stats of a run folder,
// merge). Bad input must be an InputError or a refusal, never a crash or another exception;
// a record the checks accept can be used as merge and the run-folder checks use it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "run_dir.hpp"  // internal to diffode::runs: the record checks

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = diffode::parse_json_text(text, "record.json");
  } catch (const diffode::InputError&) {
    return 0;
  }
  try {
    diffode::check_manifest(j, "manifest.json");
    // Accepted: every listed file is a name diffode writes inside the folder.
    for (const auto& f : j["files"])
      if (!diffode::is_listed_output(f.get<std::string>()) || f.get<std::string>().find("..") != std::string::npos)
        __builtin_trap();
    (void)j["seeds"]["first"].get<int64_t>();
    (void)j["seeds"]["count"].get<int64_t>();
    for (const auto& l : j["labels"]) (void)l.get<int64_t>();
  } catch (const diffode::InputError&) {
  }
  if (diffode::is_shard_record(j)) {  // merge then reads these as integers
    (void)j["shard"]["index"].get<int64_t>();
    (void)j["shard"]["count"].get<int64_t>();
    (void)j["batches"]["first"].get<int64_t>();
    (void)j["batches"]["last"].get<int64_t>();
  }
  return 0;
}
