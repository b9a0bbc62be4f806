#pragma once
// Typed config keys from one table per section (config.cpp): each key is written once,
// with its member, its one-line doc and its check; its default is the member's default in
// the section struct (config.hpp). The table gives the schema (json_schema.hpp) that checks
// kinds and unknown keys, reads a section's JSON into the struct, and writes it back.
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "diffode/runs/config.hpp"
#include "diffode/core/json_schema.hpp"

namespace diffode::config_table {

using nlohmann::json;

// The codec of a member type: its JSON kind, how a value of that kind is read, and how
// the member is written (null: an unset optional, left out).
template <class T>
struct Codec;
// A value JSON holds as it is.
template <class T, Kind K>
struct PlainCodec {
  static constexpr Kind kind = K;
  static T read(const json& v, const Where&) { return v.get<T>(); }
  static json write(const T& v) { return v; }
};
// An integer that fits T, as written (never cut to its low bits: 4294967300 is not 4).
template <class T>
T fitting_integer(const json& v, const Where& w) {
  constexpr T lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                           : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  if (!fits) w.fail("must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
  return v.get<T>();
}
template <class T>
struct IntCodec {
  static constexpr Kind kind = Kind::Int;
  static T read(const json& v, const Where& w) { return fitting_integer<T>(v, w); }
  static json write(const T& v) { return v; }
};
template <>
struct Codec<bool> : PlainCodec<bool, Kind::Bool> {};
template <>
struct Codec<int> : IntCodec<int> {};
template <>
struct Codec<int64_t> : IntCodec<int64_t> {};
template <>
struct Codec<double> : PlainCodec<double, Kind::Number> {};
template <>
struct Codec<std::string> : PlainCodec<std::string, Kind::String> {};
template <>
struct Codec<std::vector<int>> {
  static constexpr Kind kind = Kind::IntList;
  static std::vector<int> read(const json& v, const Where& w) {
    std::vector<int> out;
    for (size_t i = 0; i < v.size(); ++i) out.push_back(fitting_integer<int>(v[i], w.at(std::to_string(i))));
    return out;
  }
  static json write(const std::vector<int>& v) { return v; }
};
template <>
struct Codec<std::filesystem::path> {
  static constexpr Kind kind = Kind::Path;
  // An empty path names no file (as a folder, it would be the working directory): refused
  // for every path key; leave the key out for its default.
  static std::filesystem::path read(const json& v, const Where& w) {
    if (v.get<std::string>().empty()) w.fail("must be a path, got an empty string (leave the key out for its default)");
    return v.get<std::string>();
  }
  static json write(const std::filesystem::path& v) { return v.empty() ? json(nullptr) : json(v.string()); }  // empty: unset
};
template <>
struct Codec<std::vector<double>> {
  static constexpr Kind kind = Kind::NumberList;
  static std::vector<double> read(const json& v, const Where&) { return v.get<std::vector<double>>(); }
  static json write(const std::vector<double>& v) { return v.empty() ? json(nullptr) : json(v); }  // empty: unset
};
template <class T>
struct Codec<std::optional<T>> {
  static constexpr Kind kind = Codec<T>::kind;
  static std::optional<T> read(const json& v, const Where& w) { return Codec<T>::read(v, w); }
  static json write(const std::optional<T>& v) { return v ? Codec<T>::write(*v) : json(nullptr); }
};
// A registry entry, written and read by its name.
template <>
struct Codec<const SolverInfo*> {
  static constexpr Kind kind = Kind::String;
  static const SolverInfo* read(const json& v, const Where& w);
  static json write(const SolverInfo* v) { return v->name; }
};
template <>
struct Codec<const ScheduleInfo*> {
  static constexpr Kind kind = Kind::String;
  static const ScheduleInfo* read(const json& v, const Where& w);
  static json write(const ScheduleInfo* v) { return v->name; }
};
template <>
struct Codec<Afs> {
  static constexpr Kind kind = Kind::BoolOrString;
  static Afs read(const json& v, const Where& w);
  static json write(Afs v);
};
template <>
struct Codec<Space> {
  static constexpr Kind kind = Kind::String;
  static Space read(const json& v, const Where& w);
  static json write(Space v) { return space_name(v); }
};
template <>
struct Codec<LastInterval> {
  static constexpr Kind kind = Kind::String;
  static LastInterval read(const json& v, const Where& w);
  static json write(LastInterval v) { return v == LastInterval::learned ? "learned" : "base"; }
};
template <>
struct Codec<Labels> {
  static constexpr Kind kind = Kind::IntListOrString;
  static Labels read(const json& v, const Where& w);
  static json write(const Labels& v);
};

// One key of a section S: its schema entry, and how it is read into and written from S.
template <class S>
struct Field {
  KeyInfo info;
  std::function<void(S&, const json&, const Where&)> read;
  std::function<void(const S&, json&)> write;
};

// A check of a value as read: throws through `w.fail` ("must be >= 1, got 0").
template <class T>
using Check = std::function<void(const T& value, const json& given, const Where& w)>;

template <class T>
struct Given {
  using type = T;
};

// The key `name` of S, held in `member` (of S or a base B of S); its default is the
// member's in a default S.
template <class S, class T, class B>
Field<S> key(const char* name, T B::*member, const char* doc, typename Given<Check<T>>::type check = nullptr) {
  using C = Codec<T>;
  Field<S> f{{name, C::kind, C::write(S{}.*member), doc}, nullptr, nullptr};
  f.read = [member, check](S& s, const json& v, const Where& w) {
    s.*member = C::read(v, w);
    if (check) check(s.*member, v, w);
  };
  f.write = [member, name](const S& s, json& out) {
    if (json v = C::write(s.*member); !v.is_null()) out[name] = std::move(v);
  };
  return f;
}

// A key that must be given (no default).
template <class S, class T, class B>
Field<S> required_key(const char* name, T B::*member, const char* doc) {
  Field<S> f = key<S>(name, member, doc);
  f.info.def = nullptr;
  f.info.required = true;
  return f;
}

// Checks for numeric keys.
template <class T>
Check<T> at_least(T min, std::string note = "") {
  return [min, note](const T& v, const json& given, const Where& w) {
    if (v < min) w.fail("must be >= " + std::to_string(min) + note + ", got " + given.dump());
  };
}
template <class T>
Check<T> in_range(T lo, T hi, std::string note = "") {
  return [lo, hi, note](const T& v, const json& given, const Where& w) {
    if (v < lo || v > hi)
      w.fail("must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]" + note + ", got " + given.dump());
  };
}
// Steps and NFEs past this are a mistake (1e9 steps would run for ever), not a plan.
constexpr int kMaxSteps = 100000;
// (lo, hi]: e.g. a learning rate (1e300 is no rate, and past float's range).
inline Check<double> in_open_range(double lo, double hi) {
  return [lo, hi](const double& v, const json& given, const Where& w) {
    if (!(v > lo && v <= hi))
      w.fail("must be in (" + json(lo).dump() + ", " + json(hi).dump() + "], got " + given.dump());
  };
}
inline Check<double> positive() {
  return [](const double& v, const json& given, const Where& w) {
    if (!(v > 0)) w.fail("must be > 0, got " + given.dump());
  };
}

template <class S>
std::vector<KeyInfo> schema_of(const std::vector<Field<S>>& fields) {
  std::vector<KeyInfo> out;
  for (const auto& f : fields) out.push_back(f.info);
  return out;
}

// S from the keys present in `obj` (kinds already checked against schema_of(fields)),
// every other member at its default.
template <class S>
S read_section(const json& obj, const std::vector<Field<S>>& fields, const Where& w) {
  S s;
  for (const auto& f : fields)
    if (obj.contains(f.info.key)) f.read(s, obj[f.info.key], w.at(f.info.key));
  return s;
}

// The section as JSON: every key with a value (defaults filled in), unset optional keys left out.
template <class S>
json write_section(const S& s, const std::vector<Field<S>>& fields) {
  json out = json::object();
  for (const auto& f : fields) f.write(s, out);
  return out;
}

}  // namespace diffode::config_table
