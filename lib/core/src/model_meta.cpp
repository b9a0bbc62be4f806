#include "diffode/core/model_meta.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "diffode/core/error.hpp"

namespace diffode {

using nlohmann::json;

const std::vector<KeyInfo>& model_metadata_keys() {
  static const std::vector<KeyInfo> k = {
      {"prediction", Kind::String, nullptr, "what the network outputs: x0, eps, v or velocity"},
      {"process", Kind::Object, nullptr, "the noise process {type: edm|vp|flow|discrete, ...}", false,
       {{"type", Kind::String, nullptr, "edm, vp, flow or discrete", true},
        {"beta_min", Kind::Number, nullptr, "vp: beta_min"},
        {"beta_max", Kind::Number, nullptr, "vp: beta_max"},
        {"shift", Kind::Number, nullptr, "flow: grids are shifted, sigma' = shift * sigma (default 1)"},
        {"alphas_cumprod", Kind::NumberList, nullptr, "discrete: alpha-bar of each trained timestep"},
        {"betas", Kind::Object, nullptr, "discrete: a named beta schedule {schedule, start, end, steps}", false,
         {{"schedule", Kind::String, nullptr, "linear, scaled_linear or cosine", true},
          {"start", Kind::Number, nullptr, "first beta (linear, scaled_linear)"},
          {"end", Kind::Number, nullptr, "last beta (linear, scaled_linear)"},
          {"steps", Kind::Int, nullptr, "trained timesteps (default 1000)"}}},
        {"quantize", Kind::Bool, nullptr, "discrete: call the network at the nearest trained timestep"},
        {"time_scale", Kind::Number, nullptr, "the network is called with t * time_scale (default 1)"}}},
      {"sample_shape", Kind::IntList, nullptr, "shape of one sample"},
      {"data_range", Kind::NumberList, nullptr, "[lo, hi] of the data"},
      {"sigma_min", Kind::Number, nullptr, "smallest sigma of the grids"},
      {"sigma_max", Kind::NumberOrInf, nullptr, "largest sigma of the grids (\"inf\": a flow from t = 1)"},
      {"num_classes", Kind::Int, nullptr, "classes of a conditional model (0: unconditional)"},
      {"null_class", Kind::Bool, nullptr, "y = num_classes means no class (guidance)"},
      {"description", Kind::String, nullptr, "free text"},
  };
  return k;
}

const std::vector<KeyInfo>& model_archive_info_keys() {
  static const std::vector<KeyInfo> k = {
      {"kind", Kind::String, nullptr, "what the archive is (\"features\": a feature model)"},
      {"feature_dim", Kind::Int, nullptr, "a feature model: the size of features(x)"},
      {"test_accuracy", Kind::Number, nullptr, "a feature model: its classifier's accuracy on held-out data"},
      {"gauss_mu", Kind::NumberList, nullptr, "an exact Gaussian model: its mean, flat, C order"},
      {"gauss_s", Kind::Number, nullptr, "an exact Gaussian model: its standard deviation"},
  };
  return k;
}

namespace {

// Refuses a top-level key that is neither metadata nor (in an archive) one of the
// informational keys or an "x_" key, suggesting process.<key> for a key of the process.
void check_metadata_names(const json& meta, const std::string& where, bool archive) {
  if (!meta.is_object()) return;  // check_object says so
  const auto& keys = model_metadata_keys();
  const auto& process = find_key(keys, "process")->children;
  for (auto it = meta.begin(); it != meta.end(); ++it) {
    const std::string& name = it.key();
    if (find_key(keys, name)) continue;
    if (archive && (find_key(model_archive_info_keys(), name) || name.rfind("x_", 0) == 0)) continue;
    if (find_key(process, name))
      throw ConfigError(where, "/" + name,
                        "unknown key '" + name + "': it belongs inside process (did you mean 'process." + name + "'?)");
    std::vector<std::string> names = keys_of(keys);
    if (archive) {
      for (const auto& k : model_archive_info_keys()) names.push_back(k.key);
      names.push_back("x_<anything>");
    }
    throw ConfigError(where, "/" + name, unknown_name_message("key", name, names));
  }
}

}  // namespace

void validate_model_metadata(const json& meta, const std::string& where, bool archive) {
  check_metadata_names(meta, where, archive);
  check_object(meta, model_metadata_keys(), where, "", archive);  // the others: checked by name above
  if (!archive) return;
  for (const auto& k : model_archive_info_keys())
    if (meta.contains(k.key) && !has_kind(meta[k.key], k.kind))
      throw ConfigError(where, "/" + k.key, std::string("expected ") + kind_text(k.kind) + ", got " +
                                                describe(meta[k.key]));
}

namespace {
constexpr size_t kMaxDescription = 4096;
}  // namespace

// " (sigma from a to b)" for a discrete process, whose σ̃ range is its table's; "" otherwise.
std::string process_range(const Process& p) {
  return p.timesteps() == 0 ? "" : " (its table spans sigma " + p.sigma_span() + ")";
}


namespace {

// One generic formula -> both instantiations.
template <class F>
Prediction make_prediction(const char* name, bool finite_at_pure_noise, F f) {
  return {name, finite_at_pure_noise, static_cast<X0Fn<double>>(f), static_cast<X0Fn<at::Tensor>>(f)};
}

const std::vector<Prediction>& predictions() {
  using T = at::Tensor;
  static const std::vector<Prediction> p = {
      make_prediction("x0", true, [](const T& o, const T&, const auto&, const auto&, const auto&, const auto&) {
        return o;
      }),
      make_prediction("eps", false,
                      [](const T& o, const T& x_t, const auto& a, const auto& s, const auto&, const auto&) {
                        return (x_t - o * s) / a;
                      }),
      make_prediction("v", true,
                      [](const T& o, const T& x_t, const auto& a, const auto& s, const auto&, const auto&) {
                        return (x_t * a - o * s) / (a * a + s * s);
                      }),
      make_prediction("velocity", true,
                      [](const T& o, const T& x_t, const auto& a, const auto& s, const auto& da, const auto& ds) {
                        return (x_t * ds - o * s) / (ds * a - s * da);
                      }),
  };
  return p;
}

}  // namespace

const Prediction& find_prediction(const std::string& name, const std::string& where) {
  for (const auto& p : predictions())
    if (p.name == name) return p;
  throw InputError(where + ": " + unknown_name_message("prediction", name, prediction_names()));
}


std::vector<std::string> prediction_names() {
  std::vector<std::string> out;
  for (const auto& p : predictions()) out.push_back(p.name);
  return out;
}

// Merges archive metadata and overrides into ModelMeta, checking every value.
ModelMeta resolve_model_meta(const json& archive, const json& overrides, const std::string& file,
                       const std::string& where) {
  json merged = archive;
  for (auto it = overrides.begin(); it != overrides.end(); ++it) merged[it.key()] = it.value();
  ModelMeta m;
  auto origin = [&](const char* key) {
    return overrides.contains(key) ? where + "/" + key : file + ": diffode.json /" + key;
  };
  auto need = [&](const char* key) {
    if (!merged.contains(key))
      throw InputError("model " + file + ": metadata has no '" + key + "' (no diffode.json in the archive, or it " +
                       "lacks the key): set model." + key + " in the config");
  };
  need("prediction");
  need("process");
  need("sample_shape");
  m.prediction = merged["prediction"].get<std::string>();
  find_prediction(m.prediction, origin("prediction"));
  m.process = Process::from_json(merged["process"], origin("process"));
  m.sample_shape = merged["sample_shape"].get<std::vector<int64_t>>();
  if (m.sample_shape.empty())
    throw InputError(origin("sample_shape") + ": must list at least one dimension");
  for (auto d : m.sample_shape)
    if (d < 1) throw InputError(origin("sample_shape") + ": dimensions must be >= 1, got " + merged["sample_shape"].dump());
  if (merged.contains("data_range")) {
    const auto r = merged["data_range"].get<std::vector<double>>();
    if (r.size() != 2 || !(r[0] < r[1]))
      throw InputError(origin("data_range") + ": expected [lo, hi] with lo < hi, got " + merged["data_range"].dump());
    m.data_lo = r[0];
    m.data_hi = r[1];
  }
  m.sigma_min = merged.contains("sigma_min") ? merged["sigma_min"].get<double>() : m.process.sigma_tilde(m.process.t_min());
  m.sigma_max = !merged.contains("sigma_max")      ? m.process.sigma_tilde(m.process.t_max())
                : merged["sigma_max"].is_string() ? std::numeric_limits<double>::infinity()  // "inf"
                                                  : merged["sigma_max"].get<double>();
  if (!(m.sigma_min >= 0))
    throw InputError(origin("sigma_min") + ": must be >= 0, got " + std::to_string(m.sigma_min));
  if (!(m.sigma_min < m.sigma_max))
    throw InputError((overrides.contains("sigma_min") || !overrides.contains("sigma_max") ? origin("sigma_min")
                                                                                          : origin("sigma_max")) +
                     ": need sigma_min < sigma_max, got sigma_min " + std::to_string(m.sigma_min) + ", sigma_max " +
                     std::to_string(m.sigma_max));
  const double t_hi = m.process.time_of(m.sigma_max);
  if (!std::isfinite(t_hi))
    throw InputError(origin("sigma_max") + ": sigma_max " + std::to_string(m.sigma_max) + " is beyond process '" +
                     m.process.name() + "'" + process_range(m.process));
  if (m.sigma_min > 0 && !std::isfinite(m.process.time_of(m.sigma_min)))
    throw InputError(origin("sigma_min") + ": sigma_min " + std::to_string(m.sigma_min) + " is beyond process '" +
                     m.process.name() + "'" + process_range(m.process) + " (0 is allowed: a grid ending at 0 never "
                     "calls the model there)");
  if (m.process.timesteps() > 0 && m.prediction == "velocity")
    throw InputError(origin("prediction") + ": a discrete process takes eps, v or x0 predictions, not 'velocity' "
                     "(a derivative in the timestep index is not what such networks output)");
  if (std::isinf(m.sigma_max) && !find_prediction(m.prediction, origin("prediction")).finite_at_pure_noise)
    throw InputError(origin("prediction") + ": a '" + m.prediction + "' model has no x0 estimate at pure noise " +
                     "(sigma_max = inf): set model.sigma_max to a finite value");
  m.num_classes = merged.value("num_classes", int64_t{0});
  if (m.num_classes < 0) throw InputError(origin("num_classes") + ": must be >= 0");
  m.null_class = merged.value("null_class", false);
  if (m.null_class && m.num_classes == 0)
    throw InputError(origin("null_class") + ": a null class needs num_classes > 0");
  // Free text, copied into every record of a run (manifest, parts/run.json, grid.png): cut
  // to kMaxDescription characters there, so a huge one cannot multiply into the outputs.
  m.description = text_excerpt(merged.value("description", std::string()), kMaxDescription);
  m.json = merged;
  if (merged.contains("description")) m.json["description"] = m.description;
  m.json["process"] = m.process.to_json();
  m.json["data_range"] = {m.data_lo, m.data_hi};
  m.json["sigma_min"] = m.sigma_min;
  m.json["sigma_max"] = std::isinf(m.sigma_max) ? json("inf") : json(m.sigma_max);
  m.json["num_classes"] = m.num_classes;
  m.json["null_class"] = m.null_class;
  return m;
}


}  // namespace diffode
