#pragma once
// JSON files diffode wrote and reads back (records, caches), parsed with input.hpp's limits.
#include <filesystem>
#include <nlohmann/json.hpp>

namespace diffode {

// A JSON file's value; null when the file is missing or not valid JSON, as
// parse_bounded_json reads it (for records a run wrote itself, where either means "not there").
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace diffode
