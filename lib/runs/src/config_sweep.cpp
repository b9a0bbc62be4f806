// Batch runs from configs: several files, or one with a sweep (the cartesian product of
// its values, the last key fastest), each a named run.
#include <map>

#include "config_keys.hpp"
#include "config_set.hpp"
#include "diffode/runs/config.hpp"
#include "run_dir.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace config_table;

namespace {

// A short, file-name-safe text of a swept value: strings bare, paths by file name.
std::string value_name(const json& v) {
  const std::string out =
      safe_file_name(v.is_string() ? fs::path(v.get<std::string>()).filename().string() : v.dump());
  return out.empty() ? "_" : out;
}

// The sweep of `j` (removed from it) as (key parts, values), each value checked alone so
// that a bad one is named.
std::vector<std::pair<std::vector<std::string>, json>> sweep_axes(json& j, const std::string& source,
                                                                  const fs::path& base,
                                                                  const std::vector<std::string>& sets) {
  const json sweep = j["sweep"];
  j.erase("sweep");
  const Where w{source, "/sweep"};
  if (!sweep.is_object() || sweep.empty())
    w.fail("expected an object of KEY: [values...] (e.g. {\"solver.nfe\": [5, 10]}), got " + describe(sweep));
  std::vector<std::string> known;
  leaf_keys(config_keys(), "", known);
  std::vector<std::pair<std::vector<std::string>, json>> axes;
  for (auto it = sweep.begin(); it != sweep.end(); ++it) {
    const Where at = w.at(it.key());
    const auto parts = split_key(it.key(), source + ": " + at.pointer);
    const KeyInfo* k = key_at(parts);
    if (!k || k->kind == Kind::Object) at.fail(unknown_name_message("config key", it.key(), known));
    for (const auto& set : sets)
      if (parse_set(set).first == it.key()) at.fail("--set '" + set + "' sets a swept key; drop one of them");
    if (!it.value().is_array() || it.value().empty())
      at.fail("expected a non-empty list of values, got " + describe(it.value()));
    for (size_t i = 0; i < it.value().size(); ++i) {
      json one = j;
      set_value(one, parts, it.value()[i], base, source + ": " + at.pointer);
      try {
        parse_config(std::move(one), source, base, sets);
      } catch (const ConfigError& e) {
        const std::string inner = e.source() == source ? e.pointer() + ": " + e.detail() : e.what();
        at.at(std::to_string(i)).fail("value " + it.value()[i].dump() + ": " + inner);
      }
    }
    axes.emplace_back(parts, it.value());
  }
  return axes;
}

// The runs of one config file with a sweep: the cartesian product, the last key fastest.
void expand_sweep(json j, const fs::path& file, const std::string& prefix, const std::vector<std::string>& sets,
                  std::vector<NamedConfig>& runs) {
  const std::string source = file.string();
  const fs::path base = fs::absolute(file).parent_path();
  const auto axes = sweep_axes(j, source, base, sets);
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

}  // namespace

std::vector<NamedConfig> load_run_set(const std::vector<fs::path>& files, const std::vector<std::string>& sets) {
  std::vector<NamedConfig> runs;
  for (const auto& file : files) {
    json j = read_config_file(file);
    const std::string prefix = files.size() > 1 ? file.stem().string() : "";
    if (j.is_object() && j.contains("sweep")) {
      expand_sweep(std::move(j), file, prefix, sets, runs);
      continue;
    }
    runs.push_back({prefix.empty() ? file.stem().string() : prefix, json::object(),
                    parse_config(std::move(j), file.string(), fs::absolute(file).parent_path(), sets)});
  }
  std::map<std::string, int> seen;  // unique directory names
  for (auto& r : runs)
    if (int n = ++seen[r.name]; n > 1) r.name += "-" + std::to_string(n);
  return runs;
}

}  // namespace diffode
