#pragma once
// Per-sample randomness (DESIGN.md §6): sample k's noise, and a random label, come from its
// own CPU generator seeded seed + k, so a sample depends only on its seed.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace diffode {

// Class labels of the samples: none (the null class of a conditional model), a list
// (sample k gets list[k mod size]), cycle (k mod num_classes) or random (drawn from sample
// k's generator right after its noise: torch.randint(num_classes, (1,))).
struct Labels {
  enum class Rule { none, list, cycle, random };
  Rule rule = Rule::none;
  std::vector<int64_t> list;
  bool any() const { return rule != Rule::none; }
};

// Noise of samples first..first+count-1, [count, *shape] float32: sample k drawn from its
// own CPU generator seeded seed + k, as torch.manual_seed(seed + k); torch.randn(shape).
at::Tensor make_noise(int64_t seed, int64_t first, int64_t count, const std::vector<int64_t>& shape);

// What samples first..first+count-1 start from: noise and labels (empty when none), from
// one pass over each sample's generator.
struct SampleInputs {
  at::Tensor noise;
  std::vector<int64_t> labels;
};
SampleInputs sample_inputs(const Labels& labels, int64_t seed, int64_t num_classes, const std::vector<int64_t>& shape,
                           int64_t first, int64_t count);

// The labels alone (a random label still follows its sample's noise in the generator).
std::vector<int64_t> sample_labels(const Labels& labels, int64_t seed, int64_t num_classes,
                                   const std::vector<int64_t>& shape, int64_t first, int64_t count);

}  // namespace diffode
