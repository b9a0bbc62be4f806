// Per-sample noise and labels (DESIGN.md §6).
#include "diffode/core/noise.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/DistributionsHelper.h>

#include <array>

namespace diffode {

namespace {

// The first words torch's CPU generator gives after manual_seed(seed): MT19937 seeded with
// the seed's low 32 bits (at::mt19937), up to kWords of them. Word i < 227 of the first
// twisted block reads only initial words i, i + 1 and i + 397, so 429 of the 624 initial
// words are computed and 32 twisted: a third of seeding a whole generator, which is most
// of the cost of noise for small samples.
class SeededWords {
 public:
  static constexpr int kWords = 32;  // randn of up to 16 values (2 words per uniform, 2 uniforms per pair)

  explicit SeededWords(uint64_t seed) {
    constexpr uint32_t n = kWords + 397;
    std::array<uint32_t, n> s;
    s[0] = static_cast<uint32_t>(seed);
    for (uint32_t j = 1; j < n; ++j) s[j] = 1812433253u * (s[j - 1] ^ (s[j - 1] >> 30)) + j;
    for (int i = 0; i < kWords; ++i) {
      const uint32_t mixed = (s[i] & 0x80000000u) | (s[i + 1] & 0x7fffffffu);
      uint32_t y = s[i + 397] ^ (mixed >> 1) ^ ((s[i + 1] & 1u) ? 0x9908b0dfu : 0u);
      y ^= y >> 11;
      y ^= (y << 7) & 0x9d2c5680u;
      y ^= (y << 15) & 0xefc60000u;
      y ^= y >> 18;
      words_[i] = y;
    }
  }

  // The generator interface at::normal_distribution reads (as at::CPUGeneratorImpl).
  uint32_t random() { return words_[next_++]; }
  uint64_t random64() {
    const uint64_t hi = random();
    return (hi << 32) | random();
  }
  c10::optional<double> next_double_normal_sample() { return cached_; }
  void set_next_double_normal_sample(c10::optional<double> v) { cached_ = v; }

 private:
  std::array<uint32_t, kWords> words_{};
  size_t next_ = 0;
  c10::optional<double> cached_;
};

// torch.randn of fewer than 16 values takes torch's scalar path: each value from
// at::normal_distribution<double> (Box–Muller, the pair's second value cached), cast to float.
constexpr int64_t kScalarRandnMax = 15;

void scalar_randn(uint64_t seed, float* out, int64_t n) {
  SeededWords words(seed);
  for (int64_t i = 0; i < n; ++i) {
    at::normal_distribution<double> normal(0.0, 1.0);
    out[i] = static_cast<float>(normal(&words));
  }
}

}  // namespace

at::Tensor make_noise(int64_t seed, int64_t first, int64_t count, const std::vector<int64_t>& shape) {
  std::vector<int64_t> full = {count};
  full.insert(full.end(), shape.begin(), shape.end());
  at::Tensor out = at::empty(full, at::kFloat);
  const int64_t n = c10::multiply_integers(shape);
  // Rows are independent (one generator state per seed), so threads split them, and every
  // row gets the same numbers as alone: torch.manual_seed(seed + k); torch.randn(shape).
  at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
    if (n <= kScalarRandnMax) {  // small samples: the same numbers without a tensor per row
      float* p = out.data_ptr<float>();
      for (int64_t k = begin; k < end; ++k) scalar_randn(static_cast<uint64_t>(seed + first + k), p + k * n, n);
      return;
    }
    at::Generator gen = at::detail::createCPUGenerator();
    for (int64_t k = begin; k < end; ++k) {
      gen.set_current_seed(static_cast<uint64_t>(seed + first + k));
      out[k].normal_(0.0, 1.0, gen);  // row k is contiguous, of that shape
    }
  });
  return out;
}

namespace {

// Noise and label of samples drawn one generator each: the noise, then the label.
SampleInputs random_label_rows(int64_t seed, int64_t num_classes, const std::vector<int64_t>& shape, int64_t first,
                               int64_t count) {
  std::vector<int64_t> full = {count};
  full.insert(full.end(), shape.begin(), shape.end());
  SampleInputs out{at::empty(full, at::kFloat), {}};
  for (int64_t k = 0; k < count; ++k) {
    at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed + first + k));
    out.noise[k].normal_(0.0, 1.0, gen);  // as torch.randn(shape): the sample's noise comes first in its stream
    out.labels.push_back(at::randint(num_classes, {1}, gen).item<int64_t>());
  }
  return out;
}

}  // namespace

SampleInputs sample_inputs(const Labels& labels, int64_t seed, int64_t num_classes, const std::vector<int64_t>& shape,
                           int64_t first, int64_t count) {
  if (labels.rule == Labels::Rule::random) return random_label_rows(seed, num_classes, shape, first, count);
  return {make_noise(seed, first, count, shape), sample_labels(labels, seed, num_classes, shape, first, count)};
}

std::vector<int64_t> sample_labels(const Labels& labels, int64_t seed, int64_t num_classes,
                                   const std::vector<int64_t>& shape, int64_t first, int64_t count) {
  std::vector<int64_t> out;
  switch (labels.rule) {
    case Labels::Rule::none: break;
    case Labels::Rule::list:
      for (int64_t k = first; k < first + count; ++k)
        out.push_back(labels.list[static_cast<size_t>(k) % labels.list.size()]);
      break;
    case Labels::Rule::cycle:
      for (int64_t k = first; k < first + count; ++k) out.push_back(k % num_classes);
      break;
    case Labels::Rule::random: return random_label_rows(seed, num_classes, shape, first, count).labels;
  }
  return out;
}

}  // namespace diffode
