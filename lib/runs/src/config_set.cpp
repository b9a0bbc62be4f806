// A config's --set overrides and relative paths, and the config file itself.
#include "config_set.hpp"

#include <fstream>
#include <sstream>

#include "config_keys.hpp"
#include "diffode/core/input.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace config_table;

// Makes every relative Path value of `obj` absolute against `base` (an empty one stays empty).
void resolve_paths(json& obj, const std::vector<KeyInfo>& keys, const fs::path& base) {
  if (!obj.is_object()) return;
  for (const auto& k : keys) {
    if (!obj.contains(k.key)) continue;
    json& v = obj[k.key];
    if (k.kind == Kind::Object) resolve_paths(v, k.children, base);
    if (k.kind == Kind::ObjectList && v.is_array())
      for (auto& e : v) resolve_paths(e, k.children, base);
    if (k.kind == Kind::Path && v.is_string()) {
      fs::path p = v.get<std::string>();
      if (p.is_relative() && !p.empty()) v = (base / p).lexically_normal().string();  // "": refused when read
    }
  }
}

const KeyInfo* key_at(const std::vector<std::string>& parts) {
  const std::vector<KeyInfo>* level = &config_keys();
  const KeyInfo* k = nullptr;
  for (const auto& part : parts) {
    if (!level) return nullptr;
    k = find_key(*level, part);
    if (!k) return nullptr;
    level = k->kind == Kind::Object ? &k->children : nullptr;
  }
  return k;
}

// "a.b.c" -> {"a", "b", "c"}; `what` names the key's origin in messages.
std::vector<std::string> split_key(const std::string& key, const std::string& what) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) {
    if (p.empty()) throw InputError(what + ": empty name in key '" + key + "'");
    parts.push_back(p);
  }
  if (parts.empty() || key.back() == '.') throw InputError(what + ": empty name in key '" + key + "'");
  return parts;
}

// Sets root[a][b]... = value; a relative path value resolves against `base`.
void set_value(json& root, const std::vector<std::string>& parts, json value, const fs::path& base,
               const std::string& what) {
  json* node = &root;
  std::string ptr;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    ptr += "/" + parts[i];
    json& child = (*node)[parts[i]];
    if (child.is_null()) child = json::object();
    if (!child.is_object()) throw InputError(what + ": " + ptr + " is " + describe(child) + ", not an object");
    node = &child;
  }
  if (const KeyInfo* k = key_at(parts)) {  // e.g. --set 'solver={...}' resolves the paths inside
    json wrapped = {{k->key, value}};
    resolve_paths(wrapped, {*k}, base);
    value = wrapped[k->key];
  }
  (*node)[parts.back()] = std::move(value);
}

// "key=value" of --set: the key and its value (JSON, else a plain string).
std::pair<std::string, json> parse_set(const std::string& set) {
  const auto eq = set.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("--set '" + set + "': expected KEY=VALUE, e.g. solver.name=heun");
  const std::string text = set.substr(eq + 1);
  json value;
  try {
    value = parse_bounded_json(text);
  } catch (const json::parse_error&) {
    value = text;  // not JSON: a plain string
  } catch (const std::exception&) {  // too deep, a repeated key, a number out of range: named
    value = parse_json_text(text, "--set '" + text_excerpt(set.substr(0, eq)) + "'");
  }
  return {set.substr(0, eq), value};
}

void apply_set(json& root, const std::string& set) {
  auto [key, value] = parse_set(set);
  const std::string what = "--set '" + set + "'";
  set_value(root, split_key(key, what), std::move(value), fs::current_path(), what);
}

// Every leaf key as "a.b", for suggestions.
void leaf_keys(const std::vector<KeyInfo>& keys, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& k : keys) {
    if (k.kind == Kind::Object)
      leaf_keys(k.children, prefix + k.key + ".", out);
    else
      out.push_back(prefix + k.key);
  }
}

json read_config_file(const fs::path& file) {
  return parse_json_text(read_input_file(file, "config"), file.string());
}

}  // namespace diffode
