#include "diffode/core/json_schema.hpp"

#include "diffode/core/error.hpp"

namespace diffode {

using nlohmann::json;

const char* kind_text(Kind k) {
  switch (k) {
    case Kind::Bool: return "a boolean";
    case Kind::BoolOrString: return "a boolean or a string";
    case Kind::Int: return "an integer";
    case Kind::Number: return "a number";
    case Kind::NumberOrInf: return "a number or \"inf\"";
    case Kind::String: return "a string";
    case Kind::Path: return "a path (string)";
    case Kind::NumberList: return "a list of numbers";
    case Kind::IntList: return "a list of integers";
    case Kind::IntListOrString: return "a list of integers or a string";
    case Kind::Object: return "an object";
    case Kind::ObjectList: return "a list of objects";
  }
  return "?";
}

bool has_kind(const json& v, Kind k) {
  auto all = [&v](auto pred) {
    if (!v.is_array()) return false;
    for (const auto& e : v)
      if (!pred(e)) return false;
    return true;
  };
  switch (k) {
    case Kind::Bool: return v.is_boolean();
    case Kind::BoolOrString: return v.is_boolean() || v.is_string();
    case Kind::Int: return v.is_number_integer();
    case Kind::Number: return v.is_number();
    case Kind::NumberOrInf: return v.is_number() || v == "inf";
    case Kind::String:
    case Kind::Path: return v.is_string();
    case Kind::Object: return v.is_object();
    case Kind::ObjectList: return all([](const json& e) { return e.is_object(); });
    case Kind::IntListOrString: return v.is_string() || has_kind(v, Kind::IntList);
    case Kind::NumberList: return all([](const json& e) { return e.is_number(); });
    case Kind::IntList: return all([](const json& e) { return e.is_number_integer(); });
  }
  return false;
}

std::string describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(v.type_name()) + " " + text;
}

std::vector<std::string> keys_of(const std::vector<KeyInfo>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(k.key);
  return out;
}

const KeyInfo* find_key(const std::vector<KeyInfo>& keys, const std::string& key) {
  for (const auto& k : keys)
    if (k.key == key) return &k;
  return nullptr;
}

void check_object(const json& obj, const std::vector<KeyInfo>& keys, const std::string& where,
                  const std::string& pointer, bool allow_extra) {
  if (!obj.is_object())
    throw ConfigError(where, pointer, "expected an object, got " + describe(obj));
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const KeyInfo* k = find_key(keys, it.key());
    const std::string ptr = pointer + "/" + it.key();
    if (!k) {
      if (allow_extra) continue;
      throw ConfigError(where, ptr, unknown_name_message("key", it.key(), keys_of(keys)));
    }
    if (!has_kind(it.value(), k->kind))
      throw ConfigError(where, ptr, std::string("expected ") + kind_text(k->kind) + ", got " + describe(it.value()));
    if (k->kind == Kind::Object) check_object(it.value(), k->children, where, ptr, false);
    if (k->kind == Kind::ObjectList)
      for (size_t i = 0; i < it.value().size(); ++i)
        check_object(it.value()[i], k->children, where, ptr + "/" + std::to_string(i), false);
  }
  for (const auto& k : keys)
    if (k.required && !obj.contains(k.key))
      throw ConfigError(where, pointer + "/" + k.key, "required key is missing");
}

}  // namespace diffode
