#pragma once
// A small schema for JSON objects read from users (configs, model metadata): what keys
// exist, their JSON kinds, defaults and one-line docs. check_object() names the file, the
// JSON pointer and what was expected for unknown keys, wrong types and missing keys.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace diffode {

enum class Kind { Bool, BoolOrString, Int, Number, NumberOrInf, String, Path, NumberList, IntList, IntListOrString, Object, ObjectList };

struct KeyInfo {
  std::string key;
  Kind kind;
  nlohmann::json def = nullptr;  // null: no default (the key is optional, or required)
  std::string doc;
  bool required = false;
  std::vector<KeyInfo> children = {};  // Object and ObjectList: the keys of the object(s)
};

// "an integer", "a list of numbers", ...
const char* kind_text(Kind k);
bool has_kind(const nlohmann::json& v, Kind k);
// "string \"hen\"", "number 3.5": a value as messages show it (cut at 40 characters).
std::string describe(const nlohmann::json& v);
std::vector<std::string> keys_of(const std::vector<KeyInfo>& keys);
const KeyInfo* find_key(const std::vector<KeyInfo>& keys, const std::string& key);

// Checks `obj` against `keys` (object, types, unknown and required keys) without changing
// it. Throws InputError "where: /pointer/key: ..." at the first problem.
void check_object(const nlohmann::json& obj, const std::vector<KeyInfo>& keys, const std::string& where,
                  const std::string& pointer, bool allow_extra);

}  // namespace diffode
