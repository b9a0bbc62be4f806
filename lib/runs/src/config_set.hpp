#pragma once
// A config's --set overrides and relative paths, and reading the file (internal to
// diffode::runs; config_set.cpp).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "diffode/core/json_schema.hpp"

namespace diffode {

// Makes every relative Path value of `obj` absolute against `base`.
void resolve_paths(nlohmann::json& obj, const std::vector<KeyInfo>& keys, const std::filesystem::path& base);
// The key at "a.b" split into its parts (null when there is none).
const KeyInfo* key_at(const std::vector<std::string>& parts);
// "a.b" -> {"a", "b"}; InputError naming `what` for an empty part.
std::vector<std::string> split_key(const std::string& key, const std::string& what);
// Sets the value at `parts` in `root` (a relative path made absolute against `base`).
void set_value(nlohmann::json& root, const std::vector<std::string>& parts, nlohmann::json value,
               const std::filesystem::path& base, const std::string& what);
// "key=value" -> (key, value parsed as JSON, else taken as a string).
std::pair<std::string, nlohmann::json> parse_set(const std::string& set);
void apply_set(nlohmann::json& root, const std::string& set);
// Every leaf key as "a.b", for suggestions.
void leaf_keys(const std::vector<KeyInfo>& keys, const std::string& prefix, std::vector<std::string>& out);
// The JSON of a config file (InputError naming it when it cannot be read or parsed).
nlohmann::json read_config_file(const std::filesystem::path& file);

}  // namespace diffode
