// The AMED step predictor as a TorchScript module built in C++ (no Python needed to make
// or train one), its metadata and the checks on using it.
#include "diffode/core/amed_predictor.hpp"

#include <torch/script.h>

#include <cmath>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/core/plan_check.hpp"
#include "torchscript.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kMetaFile = "diffode_predictor.json";

// TorchScript source of g_φ (DESIGN.md §4). Linear layers as addmm, SiLU as x·sigmoid(x):
// only built-in operators, so it compiles without Python.
const char* kSource = R"JIT(
def embed(self, sigma: Tensor) -> Tensor:
    z = torch.log(sigma).unsqueeze(1) * self.freqs
    e = torch.cat([torch.sin(z), torch.cos(z)], 1)
    h = torch.addmm(self.emb_b, e, self.emb_w.t())
    return h * torch.sigmoid(h)

def forward(self, feature: Tensor, sigma_cur: Tensor, sigma_next: Tensor) -> Tensor:
    h = torch.addmm(self.feat1_b, feature, self.feat1_w.t())
    h = h * torch.sigmoid(h)
    f = torch.addmm(self.feat2_b, h, self.feat2_w.t())
    z = torch.cat([self.embed(sigma_cur), self.embed(sigma_next), f], 1)
    g = torch.sigmoid(torch.addmm(self.head_b, z, self.head_w.t()))
    r = g[:, 0]
    c = 1.0 + self.scale_dir * (2.0 * g[:, 1] - 1.0)
    a = 1.0 + self.scale_time * (2.0 * g[:, 2] - 1.0)
    return torch.stack([r, c, a], 1)
)JIT";

// PyTorch's default Linear initialisation: U(−1/√fan_in, 1/√fan_in).
at::Tensor uniform_init(std::vector<int64_t> shape, int64_t fan_in, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return at::empty(shape, at::kFloat).uniform_(-bound, bound, gen);
}

}  // namespace

struct AmedPredictor::Impl {
  torch::jit::Module module{"AmedPredictor"};
  json meta = json::object();
  int64_t feature_dim = 0;
  std::string file = "(new)";  // where it was loaded from, for messages
};

AmedPredictor AmedPredictor::create(int64_t feature_dim, double scale_dir, double scale_time, uint64_t seed) {
  auto impl = std::make_shared<Impl>();
  at::Generator gen = at::detail::createCPUGenerator(seed);
  auto& m = impl->module;
  auto param = [&](const char* name, at::Tensor t) { m.register_parameter(name, t.set_requires_grad(true), false); };
  param("emb_w", uniform_init({8, 8}, 8, gen));
  param("emb_b", uniform_init({8}, 8, gen));
  param("feat1_w", uniform_init({128, feature_dim}, feature_dim, gen));
  param("feat1_b", uniform_init({128}, feature_dim, gen));
  param("feat2_w", uniform_init({4, 128}, 128, gen));
  param("feat2_b", uniform_init({4}, 128, gen));
  param("head_w", at::zeros({3, 20}, at::kFloat));  // zero heads: r = ½, c = a = 1 to start
  param("head_b", at::zeros({3}, at::kFloat));
  // Frequencies 1, 1/2, 1/4, 1/8 of log σ: one period spans the σ range of any schedule.
  m.register_buffer("freqs", at::tensor({1.0f, 0.5f, 0.25f, 0.125f}));
  m.register_attribute("scale_dir", c10::FloatType::get(), scale_dir);
  m.register_attribute("scale_time", c10::FloatType::get(), scale_time);
  m.define(kSource);
  impl->feature_dim = feature_dim;
  AmedPredictor p;
  p.impl_ = std::move(impl);
  return p;
}

AmedPredictor AmedPredictor::load(const fs::path& path) {
  const std::string file = path.string();
  auto impl = std::make_shared<Impl>();
  torch::jit::ExtraFilesMap extra{{kMetaFile, ""}};
  impl->module = load_torchscript(path, "predictor", "predictor file", c10::kCPU, &extra);
  if (extra[kMetaFile].empty() || !impl->module.find_method("forward") || !impl->module.hasattr("feat1_w"))
    throw InputError("predictor " + file + ": not a diffode AMED predictor (no " + kMetaFile +
                     " or no predictor module inside); make one with 'diffode distill'");
  impl->file = file;
  impl->meta = parse_json_text(extra[kMetaFile], "predictor " + file + ": " + kMetaFile);
  if (!impl->meta.is_object()) throw InputError("predictor " + file + ": " + kMetaFile + " is not a JSON object");
  impl->feature_dim = impl->module.attr("feat1_w").toTensor().size(1);
  AmedPredictor p;
  p.impl_ = std::move(impl);
  return p;
}

MeanValueStep AmedPredictor::predict(const Tensor& feature, double sigma_cur, double sigma_next) const {
  const int64_t b = feature.size(0);
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(feature.device());
  c10::IValue v;
  try {
    v = impl_->module.forward({feature.to(at::kFloat), at::full({b}, sigma_cur, opts), at::full({b}, sigma_next, opts)});
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw InputError("predictor " + impl_->file + ": forward failed: " + what.substr(0, what.find('\n')));
  }
  if (!v.isTensor() || v.toTensor().dim() != 2 || v.toTensor().size(0) != b || v.toTensor().size(1) != 3)
    throw InputError("predictor " + impl_->file + ": forward must return a [batch, 3] tensor (r, c, a)");
  const at::Tensor out = v.toTensor();
  if (!at::isfinite(out.detach()).all().item<bool>())
    throw InputError("predictor " + impl_->file + ": returned NaN or Inf for (r, c, a) on the interval from sigma " +
                     std::to_string(sigma_cur) + " to " + std::to_string(sigma_next) +
                     " (the predictor, not the model, is at fault)");
  return {out.select(1, 0), out.select(1, 1), out.select(1, 2)};
}

std::string AmedPredictor::archive_bytes() const {
  std::ostringstream bytes;
  impl_->module.save(bytes, {{kMetaFile, impl_->meta.dump(1)}});
  return bytes.str();
}

std::vector<Tensor> AmedPredictor::parameters() const {
  std::vector<Tensor> out;
  for (const auto& p : impl_->module.parameters()) out.push_back(p);
  return out;
}

int64_t AmedPredictor::feature_dim() const { return impl_->feature_dim; }
const json& AmedPredictor::metadata() const { return impl_->meta; }
void AmedPredictor::set_metadata(json meta) { impl_->meta = std::move(meta); }


json predictor_identity(const PredictorUse& use, const ScheduleSpec& schedule) {
  const json sched = schedule_json(schedule);
  return {{"kind", "amed_predictor"},   {"model_sha256", use.model_sha256}, {"solver", use.solver},
          {"steps", use.steps},         {"afs", use.afs},                   {"schedule", sched},
          {"sigmas", grid_json(use.grid)}, {"feature_dim", use.feature_dim}, {"space", use.space},
          {"last_interval", use.last_interval}};
}

void check_predictor(const AmedPredictor& p, const fs::path& file, const PredictorUse& use) {
  const json& m = p.metadata();
  PlanCheck check(m);
  check.differs("model_sha256", use.model_sha256, "model sha256");
  check.differs("solver", use.solver, "solver");
  check.differs("steps", use.steps, "steps");
  check.differs("afs", use.afs, "afs");
  // keys older predictors do not record, read as their value then
  check.differs("space", use.space, "space", "sigma");
  check.differs("last_interval", use.last_interval, "last interval", "base");
  if (m.value("steps", -1) == use.steps) {
    const json want = grid_json(use.grid);
    bool same = m.contains("sigmas") && m["sigmas"].is_array() && m["sigmas"].size() == want.size();
    for (size_t i = 0; same && i < want.size(); ++i) {
      const json &a = m["sigmas"][i], &b = want[i];
      same = a.is_number() && b.is_number() ? std::abs(a.get<double>() - b.get<double>()) <= 1e-9 * b.get<double>()
                                            : a == b;
    }
    if (!same)
      check.problem("sigma grid " + (m.contains("sigmas") ? m["sigmas"].dump() : "(not recorded)") + " of schedule " +
                    m.value("schedule", json()).dump() + " (this run: " + want.dump() + ")");
  }
  if (p.feature_dim() != use.feature_dim)
    check.problem("feature width " + std::to_string(p.feature_dim()) + " (this model gives " +
                  std::to_string(use.feature_dim) + ")");
  check.throw_if_any("predictor " + file.string() + " was distilled", "distill one for this setting with 'diffode distill'");
}

}  // namespace diffode
