#include "diffode/config.hpp"

#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "diffode/error.hpp"
#include "diffode/io.hpp"
#include "diffode/process.hpp"
#include "diffode/schedule.hpp"
#include "diffode/solver.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ---- a small schema: what keys exist, their JSON types and defaults ----

enum class Kind { Bool, Int, Number, NumberOrInf, String, Path, NumberList, IntList, IntListOrString, Object, ObjectList };

struct Field {
  std::string key;
  Kind kind;
  json def = nullptr;  // null: no default
  std::vector<Field> children = {};
  bool required = false;
};

const char* kind_text(Kind k) {
  switch (k) {
    case Kind::Bool: return "a boolean";
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
  switch (k) {
    case Kind::Bool: return v.is_boolean();
    case Kind::Int: return v.is_number_integer();
    case Kind::Number: return v.is_number();
    case Kind::NumberOrInf: return v.is_number() || v == "inf";
    case Kind::String:
    case Kind::Path: return v.is_string();
    case Kind::Object: return v.is_object();
    case Kind::ObjectList:
      if (!v.is_array()) return false;
      for (const auto& e : v)
        if (!e.is_object()) return false;
      return true;
    case Kind::IntListOrString: return v.is_string() || has_kind(v, Kind::IntList);
    case Kind::NumberList:
    case Kind::IntList:
      if (!v.is_array()) return false;
      for (const auto& e : v)
        if (!(k == Kind::IntList ? e.is_number_integer() : e.is_number())) return false;
      return true;
  }
  return false;
}

std::string describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(v.type_name()) + " " + text;
}

// The model metadata keys of DESIGN.md §5, shared by diffode.json and config model.*.
const std::vector<Field>& metadata_fields() {
  static const std::vector<Field> f = {
      {"prediction", Kind::String},
      {"process", Kind::Object, nullptr,
       {{"type", Kind::String, nullptr, {}, true}, {"beta_min", Kind::Number}, {"beta_max", Kind::Number}}},
      {"sample_shape", Kind::IntList},
      {"data_range", Kind::NumberList},
      {"sigma_min", Kind::Number},
      {"sigma_max", Kind::NumberOrInf},
      {"num_classes", Kind::Int},
      {"null_class", Kind::Bool},
      {"description", Kind::String},
  };
  return f;
}

const std::vector<Field>& config_schema() {
  static const std::vector<Field> schema = [] {
    std::vector<Field> model = {{"path", Kind::Path, nullptr, {}, true},
                                {"device", Kind::String, "cpu"},
                                {"threads", Kind::Int, 0},
                                {"dtype", Kind::String, "float32"}};
    for (const auto& f : metadata_fields()) model.push_back(f);
    const std::vector<Field> solver = {{"name", Kind::String, "heun"},     {"steps", Kind::Int},
                                       {"nfe", Kind::Int},                 {"afs", Kind::Bool},
                                       {"precision", Kind::String, "float64"}, {"max_order", Kind::Int, 0},
                                       {"predictor", Kind::Path}};
    // A compared solver: the solver object without steps/nfe (compare.nfe gives those), and a label.
    std::vector<Field> compared = {{"label", Kind::String}};
    for (const auto& f : solver)
      if (f.key != "steps" && f.key != "nfe") compared.push_back(f);
    return std::vector<Field>{
        {"model", Kind::Object, json::object(), model, true},
        {"solver", Kind::Object, json::object(), solver},
        {"schedule", Kind::Object, json::object(),
         {{"name", Kind::String, "polynomial"},
          {"rho", Kind::Number},
          {"sigmas", Kind::NumberList},
          {"denoise_to_zero", Kind::Bool, false}}},
        {"sampling", Kind::Object, json::object(),
         {{"num_samples", Kind::Int, 64},
          {"batch_size", Kind::Int, 64},
          {"seed", Kind::Int, 0},
          {"labels", Kind::IntListOrString},
          {"guidance", Kind::Number, 1.0}}},
        {"distill", Kind::Object, json::object(),
         {{"teacher", Kind::String, "heun"},
          {"teacher_points", Kind::Int, 1},
          {"trajectories", Kind::Int, 2048},
          {"validation", Kind::Int, 256},
          {"batch_size", Kind::Int, 64},
          {"iterations", Kind::Int, 300},
          {"eval_every", Kind::Int, 25},
          {"lr", Kind::Number, 5e-3},
          {"seed", Kind::Int, 1000000000},
          {"scale_dir", Kind::Number, 0.05},
          {"scale_time", Kind::Number, 0.05}}},
        {"compare", Kind::Object, nullptr,
         {{"solvers", Kind::ObjectList, nullptr, compared, true},
          {"nfe", Kind::IntList, nullptr, {}, true},
          {"reference", Kind::Object, json::object(),
           {{"name", Kind::String, "dpmpp3m"}, {"steps", Kind::Int, 200}, {"tolerance", Kind::Number, 0.01}}},
          {"grid_samples", Kind::Int, 8}}},
        {"eval", Kind::Object, nullptr,
         {{"features", Kind::Path, nullptr, {}, true}, {"stats", Kind::Path, nullptr, {}, true}}},
        {"output", Kind::Object, json::object(),
         {{"dir", Kind::Path},
          {"grid_cols", Kind::Int, 8},
          {"grid_max", Kind::Int, 256},
          {"png", Kind::Bool, false},
          {"npy", Kind::Bool, true}}},
    };
  }();
  return schema;
}

std::vector<std::string> keys_of(const std::vector<Field>& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.push_back(f.key);
  return out;
}

const Field* find_field(const std::vector<Field>& fields, const std::string& key) {
  for (const auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

// Checks `obj` against `fields` (types, unknown keys, required keys) and fills defaults.
void check_object(json& obj, const std::vector<Field>& fields, const std::string& where,
                  const std::string& pointer, bool allow_extra) {
  if (!obj.is_object())
    throw InputError(where + ": " + (pointer.empty() ? "/" : pointer) + ": expected an object, got " +
                     describe(obj));
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const Field* f = find_field(fields, it.key());
    const std::string ptr = pointer + "/" + it.key();
    if (!f) {
      if (allow_extra) continue;
      throw InputError(where + ": " + ptr + ": " + unknown_name_message("key", it.key(), keys_of(fields)));
    }
    if (!has_kind(it.value(), f->kind))
      throw InputError(where + ": " + ptr + ": expected " + kind_text(f->kind) + ", got " +
                       describe(it.value()));
    if (f->kind == Kind::Object) check_object(it.value(), f->children, where, ptr, false);
    if (f->kind == Kind::ObjectList)
      for (size_t i = 0; i < it.value().size(); ++i)
        check_object(it.value()[i], f->children, where, ptr + "/" + std::to_string(i), false);
  }
  for (const auto& f : fields) {
    if (obj.contains(f.key)) continue;
    if (f.required)
      throw InputError(where + ": " + pointer + "/" + f.key + ": required key is missing");
    if (!f.def.is_null()) {
      obj[f.key] = f.def;
      if (f.kind == Kind::Object) check_object(obj[f.key], f.children, where, pointer + "/" + f.key, false);
    }
  }
}

// Makes every relative Path field of `obj` absolute against `base`.
void resolve_paths(json& obj, const std::vector<Field>& fields, const fs::path& base) {
  if (!obj.is_object()) return;
  for (const auto& f : fields) {
    if (!obj.contains(f.key)) continue;
    json& v = obj[f.key];
    if (f.kind == Kind::Object) resolve_paths(v, f.children, base);
    if (f.kind == Kind::ObjectList && v.is_array())
      for (auto& e : v) resolve_paths(e, f.children, base);
    if (f.kind == Kind::Path && v.is_string()) {
      fs::path p = v.get<std::string>();
      if (p.is_relative()) v = (base / p).lexically_normal().string();
    }
  }
}

const Field* field_at(const std::vector<std::string>& parts) {
  const std::vector<Field>* level = &config_schema();
  const Field* f = nullptr;
  for (const auto& part : parts) {
    if (!level) return nullptr;
    f = find_field(*level, part);
    if (!f) return nullptr;
    level = f->kind == Kind::Object ? &f->children : nullptr;
  }
  return f;
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

// Sets root[a][b]... = value; a relative Path value resolves against `base`.
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
  const Field* f = field_at(parts);
  if (f && f->kind == Kind::Path && value.is_string()) {
    fs::path p = value.get<std::string>();
    if (p.is_relative()) value = (base / p).lexically_normal().string();
  }
  if (f && f->kind == Kind::Object) resolve_paths(value, f->children, base);  // e.g. --set 'solver={...}'
  if (f && f->kind == Kind::ObjectList && value.is_array())
    for (auto& e : value) resolve_paths(e, f->children, base);
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
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;  // not JSON: a plain string
  }
  return {set.substr(0, eq), value};
}

// Applies one `--set a.b=value` (paths against the working directory).
void apply_set(json& root, const std::string& set) {
  auto [key, value] = parse_set(set);
  set_value(root, split_key(key, "--set '" + set + "'"), std::move(value), fs::current_path(), "--set '" + set + "'");
}

// Every leaf key of the schema as "a.b", for suggestions.
void leaf_keys(const std::vector<Field>& fields, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& f : fields) {
    if (f.kind == Kind::Object)
      leaf_keys(f.children, prefix + f.key + ".", out);
    else
      out.push_back(prefix + f.key);
  }
}

std::optional<int> opt_int(const json& obj, const char* key) {
  if (!obj.contains(key)) return std::nullopt;
  return obj[key].get<int>();
}

}  // namespace

json parse_json_text(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    size_t line = 1, col = 1;
    const size_t end = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw InputError(where + ":" + std::to_string(line) + ":" + std::to_string(col) +
                     ": malformed JSON: " + what);
  }
}

void validate_model_metadata(const json& meta, const std::string& where, bool allow_extra_keys) {
  json copy = meta;
  check_object(copy, metadata_fields(), where, "", allow_extra_keys);
}

namespace {
json read_config_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const char* why = fs::exists(file) ? "cannot be read" : "does not exist";
    throw InputError("config " + file.string() + ": file " + why);
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_json_text(buf.str(), file.string());
}

// A short, file-name-safe text of a swept value: strings bare, paths by file name.
std::string value_name(const json& v) {
  const std::string out =
      safe_file_name(v.is_string() ? fs::path(v.get<std::string>()).filename().string() : v.dump());
  return out.empty() ? "_" : out;
}
}  // namespace

Config load_config(const fs::path& file, const std::vector<std::string>& sets) {
  json j = read_config_file(file);
  fs::path base = fs::absolute(file).parent_path();
  return parse_config(std::move(j), file.string(), base, sets);
}

std::vector<NamedConfig> load_run_set(const std::vector<fs::path>& files, const std::vector<std::string>& sets) {
  std::vector<NamedConfig> runs;
  for (const auto& file : files) {
    json j = read_config_file(file);
    const std::string source = file.string();
    const fs::path base = fs::absolute(file).parent_path();
    const std::string prefix = files.size() > 1 ? file.stem().string() : "";
    if (!j.is_object() || !j.contains("sweep")) {
      runs.push_back({prefix.empty() ? file.stem().string() : prefix, json::object(),
                      parse_config(std::move(j), source, base, sets)});
      continue;
    }
    const json sweep = j["sweep"];
    j.erase("sweep");
    if (!sweep.is_object() || sweep.empty())
      throw InputError(source + ": /sweep: expected an object of KEY: [values...] (e.g. {\"solver.nfe\": [5, 10]}), got " +
                       describe(sweep));
    std::vector<std::string> known;
    leaf_keys(config_schema(), "", known);
    std::vector<std::pair<std::vector<std::string>, json>> axes;
    for (auto it = sweep.begin(); it != sweep.end(); ++it) {
      const std::string ptr = source + ": /sweep/" + it.key();
      const auto parts = split_key(it.key(), ptr);
      const Field* f = field_at(parts);
      if (!f || f->kind == Kind::Object) throw InputError(ptr + ": " + unknown_name_message("config key", it.key(), known));
      for (const auto& set : sets)
        if (parse_set(set).first == it.key())
          throw InputError(ptr + ": --set '" + set + "' sets a swept key; drop one of them");
      if (!it.value().is_array() || it.value().empty())
        throw InputError(ptr + ": expected a non-empty list of values, got " + describe(it.value()));
      for (size_t i = 0; i < it.value().size(); ++i) {  // each value alone, so a bad one is named
        json one = j;
        set_value(one, parts, it.value()[i], base, ptr);
        try {
          parse_config(std::move(one), source, base, sets);
        } catch (const InputError& e) {
          std::string msg = e.what();
          if (msg.rfind(source + ": ", 0) == 0) msg = msg.substr(source.size() + 2);
          throw InputError(ptr + "/" + std::to_string(i) + ": value " + it.value()[i].dump() + ": " + msg);
        }
      }
      axes.emplace_back(parts, it.value());
    }
    // The cartesian product, the last key varying fastest.
    std::vector<size_t> index(axes.size(), 0);
    for (bool more = true; more;) {
      json point = j, values = json::object();
      std::string name = prefix;
      for (size_t a = 0; a < axes.size(); ++a) {
        const json& v = axes[a].second[index[a]];
        std::string key;
        for (const auto& p : axes[a].first) key += (key.empty() ? "" : ".") + p;
        set_value(point, axes[a].first, v, base, source + ": /sweep/" + key);
        values[key] = v;
        name += (name.empty() ? "" : "_") + axes[a].first.back() + "-" + value_name(v);
      }
      try {
        runs.push_back({name, values, parse_config(std::move(point), source, base, sets)});
      } catch (const InputError& e) {
        throw InputError(std::string(e.what()) + " (in the sweep point " + values.dump() + ")");
      }
      more = false;
      for (size_t a = axes.size(); a-- > 0;) {
        if (++index[a] < axes[a].second.size()) {
          more = true;
          break;
        }
        index[a] = 0;
      }
    }
  }
  // Unique directory names.
  std::map<std::string, int> seen;
  for (auto& r : runs)
    if (int n = ++seen[r.name]; n > 1) r.name += "-" + std::to_string(n);
  return runs;
}

Config parse_config(json j, const std::string& source, const fs::path& base_dir,
                    const std::vector<std::string>& sets) {
  const auto& schema = config_schema();
  if (!j.is_object()) throw InputError(source + ": /: expected an object, got " + describe(j));
  if (j.contains("sweep"))
    throw InputError(source + ": /sweep: a sweep makes several runs; 'diffode sample' and 'diffode compare' expand "
                              "it, this command takes a single run");
  resolve_paths(j, schema, base_dir);
  for (const auto& s : sets) apply_set(j, s);
  check_object(j, schema, source, "", false);

  Config c;
  c.source = source;
  auto fail = [&](const std::string& ptr, const std::string& msg) {
    throw InputError(source + ": " + ptr + ": " + msg);
  };

  // model
  const json& m = j["model"];
  c.model.path = m["path"].get<std::string>();
  c.model.device = m["device"].get<std::string>();
  if (c.model.device != "cpu" && c.model.device.rfind("cuda", 0) != 0)
    fail("/model/device", "expected \"cpu\", \"cuda\" or \"cuda:N\", got \"" + c.model.device + "\"");
  c.model.threads = m["threads"].get<int>();
  if (c.model.threads < 0) fail("/model/threads", "must be >= 0 (0 = all cores), got " + m["threads"].dump());
  c.model.dtype = m["dtype"].get<std::string>();
  const std::vector<std::string> dtypes = {"float32", "float64", "float16", "bfloat16"};
  if (std::find(dtypes.begin(), dtypes.end(), c.model.dtype) == dtypes.end())
    fail("/model/dtype", unknown_name_message("dtype", c.model.dtype, dtypes));
  for (const auto& f : metadata_fields())
    if (m.contains(f.key)) c.model.overrides[f.key] = m[f.key];

  // solver
  const json& s = j["solver"];
  c.solver.name = s["name"].get<std::string>();
  try {
    find_solver(c.solver.name);
  } catch (const InputError& e) {
    fail("/solver/name", e.what());
  }
  c.solver.steps = opt_int(s, "steps");
  c.solver.nfe = opt_int(s, "nfe");
  if (c.solver.steps && c.solver.nfe)
    fail("/solver", "give either \"steps\" or \"nfe\", not both (steps " + std::to_string(*c.solver.steps) +
                        ", nfe " + std::to_string(*c.solver.nfe) + ")");
  if (c.solver.steps && *c.solver.steps < 1) fail("/solver/steps", "must be >= 1, got " + s["steps"].dump());
  if (c.solver.nfe && *c.solver.nfe < 1) fail("/solver/nfe", "must be >= 1, got " + s["nfe"].dump());
  if (s.contains("afs")) c.solver.afs = s["afs"].get<bool>();
  c.solver.precision = s["precision"].get<std::string>();
  if (c.solver.precision != "float32" && c.solver.precision != "float64")
    fail("/solver/precision", unknown_name_message("precision", c.solver.precision, {"float32", "float64"}));
  c.solver.max_order = s["max_order"].get<int>();
  const SolverInfo& solver = find_solver(c.solver.name);
  if (c.solver.max_order != 0) {
    if (solver.default_max_order == 0)
      fail("/solver/max_order", "solver '" + solver.name + "' has no max_order");
    if (c.solver.max_order < 1 || c.solver.max_order > solver.default_max_order)
      fail("/solver/max_order", "must be in [1, " + std::to_string(solver.default_max_order) + "] for '" +
                                    solver.name + "', got " + s["max_order"].dump());
  }

  if (s.contains("predictor")) c.solver.predictor = fs::path(s["predictor"].get<std::string>());
  if (c.solver.predictor && !solver.learned)
    fail("/solver/predictor", "solver '" + solver.name + "' takes no predictor (only the AMED solvers do)");

  // distill
  const json& d = j["distill"];
  c.distill.teacher = d["teacher"].get<std::string>();
  const SolverInfo* teacher = nullptr;
  try {
    teacher = &find_solver(c.distill.teacher);
  } catch (const InputError& e) {
    fail("/distill/teacher", e.what());
  }
  if (teacher->learned)
    fail("/distill/teacher", "the teacher must be a training-free solver, got '" + c.distill.teacher + "'");
  auto positive = [&](const char* key, int64_t min) {
    const int64_t v = d[key].get<int64_t>();
    if (v < min) fail(std::string("/distill/") + key, "must be >= " + std::to_string(min) + ", got " + d[key].dump());
    return v;
  };
  c.distill.teacher_points = static_cast<int>(positive("teacher_points", 1));
  c.distill.trajectories = positive("trajectories", 1);
  c.distill.validation = positive("validation", 1);
  c.distill.batch_size = positive("batch_size", 1);
  c.distill.iterations = positive("iterations", 0);
  c.distill.eval_every = positive("eval_every", 1);
  c.distill.seed = positive("seed", 0);
  c.distill.lr = d["lr"].get<double>();
  if (!(c.distill.lr > 0)) fail("/distill/lr", "must be > 0, got " + d["lr"].dump());
  for (const char* key : {"scale_dir", "scale_time"}) {
    const double v = d[key].get<double>();
    if (!(v >= 0 && v < 1)) fail(std::string("/distill/") + key, "must be in [0, 1), got " + d[key].dump());
  }
  c.distill.scale_dir = d["scale_dir"].get<double>();
  c.distill.scale_time = d["scale_time"].get<double>();

  // schedule
  const json& sc = j["schedule"];
  c.schedule.spec.name = sc["name"].get<std::string>();
  const ScheduleInfo* sched = nullptr;
  try {
    sched = &find_schedule(c.schedule.spec.name);
  } catch (const InputError& e) {
    fail("/schedule/name", e.what());
  }
  for (const char* p : {"rho", "sigmas"}) {
    const bool takes = std::find(sched->params.begin(), sched->params.end(), p) != sched->params.end();
    if (sc.contains(p) && !takes)
      fail(std::string("/schedule/") + p, "schedule '" + sched->name + "' takes no '" + p + "'");
  }
  if (sc.contains("rho")) {
    c.schedule.spec.rho = sc["rho"].get<double>();
    if (!(*c.schedule.spec.rho > 0)) fail("/schedule/rho", "must be > 0, got " + sc["rho"].dump());
  }
  if (std::find(sched->params.begin(), sched->params.end(), "sigmas") != sched->params.end()) {
    if (!sc.contains("sigmas")) fail("/schedule/sigmas", "schedule '" + sched->name + "' needs a list of sigmas");
    c.schedule.spec.sigmas = sc["sigmas"].get<std::vector<double>>();
    const auto& sg = c.schedule.spec.sigmas;
    if (sg.size() < 2) fail("/schedule/sigmas", "needs at least 2 values (one step), got " + sc["sigmas"].dump());
    for (size_t i = 0; i < sg.size(); ++i) {
      if (sg[i] < 0) fail("/schedule/sigmas/" + std::to_string(i), "must be >= 0, got " + std::to_string(sg[i]));
      if (i && !(sg[i] < sg[i - 1]))
        fail("/schedule/sigmas/" + std::to_string(i), "sigmas must strictly decrease, but " +
                                                          std::to_string(sg[i]) + " follows " + std::to_string(sg[i - 1]));
    }
    const int n = static_cast<int>(sg.size()) - 1;
    if (c.solver.steps && *c.solver.steps != n)
      fail("/solver/steps", "the custom schedule has " + std::to_string(n) + " steps, but steps is " +
                                std::to_string(*c.solver.steps));
  }
  c.schedule.denoise_to_zero = sc["denoise_to_zero"].get<bool>();
  if (!c.solver.steps && !c.solver.nfe) c.solver.steps = fixed_steps(c.schedule.spec).value_or(18);

  // sampling
  const json& sa = j["sampling"];
  c.sampling.num_samples = sa["num_samples"].get<int64_t>();
  c.sampling.batch_size = sa["batch_size"].get<int64_t>();
  c.sampling.seed = sa["seed"].get<int64_t>();
  if (c.sampling.num_samples < 1) fail("/sampling/num_samples", "must be >= 1, got " + sa["num_samples"].dump());
  if (c.sampling.batch_size < 1) fail("/sampling/batch_size", "must be >= 1, got " + sa["batch_size"].dump());
  if (c.sampling.seed < 0) fail("/sampling/seed", "must be >= 0, got " + sa["seed"].dump());
  if (sa.contains("labels")) {
    const json& l = sa["labels"];
    if (l.is_string()) {
      c.sampling.labels = l.get<std::string>();
      if (c.sampling.labels != "cycle" && c.sampling.labels != "random")
        fail("/sampling/labels", "expected a list of class indices, \"cycle\" or \"random\", got \"" +
                                     c.sampling.labels + "\"");
    } else {
      c.sampling.labels = "list";
      c.sampling.label_list = l.get<std::vector<int64_t>>();
      if (c.sampling.label_list.empty())
        fail("/sampling/labels", "is an empty list: give at least one class (the list repeats over the samples)");
    }
  }
  c.sampling.guidance = sa["guidance"].get<double>();

  // eval
  if (j.contains("eval"))
    c.eval = EvalConfig{j["eval"]["features"].get<std::string>(), j["eval"]["stats"].get<std::string>()};

  // compare
  if (j.contains("compare")) {
    const json& cj = j["compare"];
    CompareConfig cc;
    cc.nfe = cj["nfe"].get<std::vector<int>>();
    if (cc.nfe.empty()) fail("/compare/nfe", "is an empty list: give the NFEs to compare at, e.g. [5, 10, 20]");
    for (size_t i = 0; i < cc.nfe.size(); ++i)
      if (cc.nfe[i] < 1) fail("/compare/nfe/" + std::to_string(i), "must be >= 1, got " + std::to_string(cc.nfe[i]));
    if (cj["solvers"].empty()) fail("/compare/solvers", "is an empty list: give the solvers to compare");
    std::vector<std::string> labels;
    for (size_t i = 0; i < cj["solvers"].size(); ++i) {
      const std::string ptr = "/compare/solvers/" + std::to_string(i);
      json obj = cj["solvers"][i];
      const std::string label = obj.value("label", obj.value("name", std::string("heun")));
      obj.erase("label");
      json probe = j;  // the solver as a whole config, to check it as the sample command would
      probe.erase("compare");
      probe["solver"] = obj;
      probe["solver"]["nfe"] = cc.nfe[0];
      try {
        parse_config(std::move(probe), source, "/");
      } catch (const InputError& e) {
        std::string msg = e.what();
        if (const auto at = msg.find(": /solver"); at != std::string::npos) msg.replace(at, 9, ": " + ptr);
        throw InputError(msg);
      }
      if (std::find(labels.begin(), labels.end(), label) != labels.end())
        fail(ptr, "label '" + label + "' is used twice: give each compared solver its own \"label\"");
      labels.push_back(label);
      obj["label"] = label;
      cc.solvers.push_back(obj);
    }
    const json& ref = cj["reference"];
    cc.reference_solver = ref["name"].get<std::string>();
    try {
      if (find_solver(cc.reference_solver).learned)
        fail("/compare/reference/name", "the reference must be a training-free solver, got '" + cc.reference_solver + "'");
    } catch (const InputError& e) {
      if (std::string(e.what()).rfind(source, 0) == 0) throw;
      fail("/compare/reference/name", e.what());
    }
    cc.reference_steps = ref["steps"].get<int>();
    if (cc.reference_steps < 2) fail("/compare/reference/steps", "must be >= 2, got " + ref["steps"].dump());
    cc.reference_tolerance = ref["tolerance"].get<double>();
    if (!(cc.reference_tolerance > 0))
      fail("/compare/reference/tolerance", "must be > 0, got " + ref["tolerance"].dump());
    cc.grid_samples = cj["grid_samples"].get<int>();
    if (cc.grid_samples < 0) fail("/compare/grid_samples", "must be >= 0, got " + cj["grid_samples"].dump());
    c.compare = std::move(cc);
  }

  // output
  const json& o = j["output"];
  if (o.contains("dir")) c.output.dir = fs::path(o["dir"].get<std::string>());
  c.output.grid_cols = o["grid_cols"].get<int>();
  c.output.grid_max = o["grid_max"].get<int>();
  c.output.png = o["png"].get<bool>();
  c.output.npy = o["npy"].get<bool>();
  if (c.output.grid_cols < 1) fail("/output/grid_cols", "must be >= 1, got " + o["grid_cols"].dump());
  if (c.output.grid_max < 0) fail("/output/grid_max", "must be >= 0, got " + o["grid_max"].dump());

  c.json = std::move(j);
  return c;
}

}  // namespace diffode
