#!/usr/bin/python3
"""Export the closed-form TorchScript models shipped in models/.

Every model is an isotropic Gaussian mixture  p(x0) = sum_k pi_k N(mu_k, s_k^2 I)
whose denoiser E[x0 | x_t] is known exactly, wrapped as a network of the model
contract (DESIGN.md section 5): forward(x, t) -> o, with t the model's own time and
o whatever the chosen prediction type says the network outputs.

Files written (into --out, default <repo>/models):
  gauss.pt                          single Gaussian, edm / x0
  gauss/{edm,vp,flow}_{x0,eps,v,velocity}.pt   the same Gaussian, all 12 variants
  gmm2d.pt                          2-D mixture (ring + centre), flow / velocity
  fmnist_exact.pt                   4000 narrow Gaussians on Fashion-MNIST images
  README.md                         what each file is, command, size, sha256

Run:  /usr/bin/python3 scripts/make_models.py [--out DIR]
Deterministic and idempotent: the same command always writes the same bytes.
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import time
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "/usr/bin/python3 scripts/make_models.py"
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

BETA_MIN = 0.1
BETA_MAX = 20.0
SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
PROCESSES = ["edm", "vp", "flow"]
PREDICTIONS = ["x0", "eps", "v", "velocity"]

GAUSS_S = 0.5
GAUSS_SHAPE = [3, 8, 8]
FMNIST_PER_CLASS = 400
FMNIST_S = 0.05
FMNIST_MAX_BYTES = 10 * 1000 * 1000
CONV_MIN_COMPONENTS = 256  # mixtures this large use the conv route (GaussianMixture)
CONV_ROW_BLOCK = 16


# --------------------------------------------------------------------------
# The TorchScript model
# --------------------------------------------------------------------------

@torch.jit.script
def process_coefficients(process: str, t: Tensor, beta_min: float,
                         beta_max: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """alpha(t), sigma(t), alpha'(t), sigma'(t) of x_t = alpha*x0 + sigma*eps (DESIGN.md 2).

    Computed in t.dtype; beta_* are used by vp only. vp uses expm1 so that sigma
    stays accurate for tiny t.
    """
    if process == "edm":
        return torch.ones_like(t), t, torch.zeros_like(t), torch.ones_like(t)
    if process == "vp":
        db = beta_max - beta_min
        log_alpha = -0.25 * t * t * db - 0.5 * t * beta_min
        alpha = torch.exp(log_alpha)
        sigma = torch.sqrt(-torch.expm1(2.0 * log_alpha))
        dalpha = alpha * (-0.5 * t * db - 0.5 * beta_min)
        dsigma = -alpha * dalpha / sigma
        return alpha, sigma, dalpha, dsigma
    if process == "flow":
        return 1.0 - t, t, -torch.ones_like(t), torch.ones_like(t)
    raise RuntimeError("unknown process " + process)


class GaussianMixture(torch.nn.Module):
    """Exact network output for data  sum_k pi_k N(mu_k, s_k^2 I).

    Means are held either as float64 (`means`) or as uint8 (`means_u8`, with
    mu = u8*scale + offset). The float means used by forward (and their transpose
    and squared norms) are cached in `_mu_cache` / `_mut_cache` / `_musq_cache` for
    the dtype and device of the last call, so converting thousands of images
    happens once, not per call. Not thread-safe on the first call (or on a
    dtype/device change); later calls only read the cache.

    Speed: Debian's LibTorch does its matmuls in reference (netlib) BLAS, about
    1 GFLOP/s; oneDNN's 1x1 convolution is ~20x faster. Large mixtures (`use_conv`)
    therefore run their two products as conv2d on CPU float32, with the batch padded
    to a multiple of 16 rows: oneDNN picks its kernel by batch size, and a fixed
    block makes each row's result independent of batch size and thread count
    (checked by this script). float64, other devices and small mixtures use matmul.
    """

    process: str
    prediction: str
    quantized: bool
    use_conv: bool
    row_block: int
    num_classes: int
    beta_min: float
    beta_max: float
    scale: float
    offset: float

    def __init__(self, means: Tensor, stds: Tensor, weights: Tensor, sample_shape: List[int],
                 process: str, prediction: str, scale: float = 1.0, offset: float = 0.0,
                 component_class: Optional[Tensor] = None):
        super().__init__()
        assert process in PROCESSES and prediction in PREDICTIONS
        assert means.dim() == 2 and means.shape[1] == int(np.prod(sample_shape))
        self.process = process
        self.prediction = prediction
        self.quantized = means.dtype == torch.uint8
        self.use_conv = means.shape[0] >= CONV_MIN_COMPONENTS
        self.row_block = CONV_ROW_BLOCK
        self.beta_min = BETA_MIN
        self.beta_max = BETA_MAX
        self.scale = float(scale)
        self.offset = float(offset)
        empty = torch.empty(0, dtype=torch.float64)
        self.register_buffer("means", empty if self.quantized else means.to(torch.float64))
        self.register_buffer("means_u8", means if self.quantized else torch.empty(0, dtype=torch.uint8))
        self.register_buffer("stds", stds.to(torch.float64))
        self.register_buffer("log_weights", torch.log(weights.to(torch.float64) / weights.sum()))
        self._mu_cache = empty
        self._mut_cache = empty
        self._musq_cache = empty
        # Class-conditional mixtures: class c is the mixture of the components with
        # component_class == c; y = num_classes (the null class) is the whole mixture.
        classes = component_class if component_class is not None else torch.empty(0, dtype=torch.int64)
        self.register_buffer("component_class", classes.to(torch.int64))
        self.num_classes = int(classes.max().item()) + 1 if classes.numel() > 0 else 0

    def _float_means(self, like: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """mu [K, D], mu^T [D, K] and ||mu_k||^2 [K] in like's dtype/device (cached)."""
        mu = self._mu_cache
        if mu.numel() == 0 or mu.dtype != like.dtype or mu.device != like.device:
            if self.quantized:
                mu = self.means_u8.to(like.device, torch.float64) * self.scale + self.offset
            else:
                mu = self.means.to(like.device, torch.float64)
            mu = mu.to(like.dtype).contiguous()
            self._mu_cache = mu
            self._mut_cache = mu.t().contiguous() if self.use_conv else mu.t()
            self._musq_cache = (mu * mu).sum(1)
        return mu, self._mut_cache, self._musq_cache

    def _times_transposed(self, a: Tensor, w: Tensor) -> Tensor:
        """a [B, n] @ w^T for w [m, n] (see the class comment for the conv route)."""
        if self.use_conv and a.device.type == "cpu" and a.dtype == torch.float32:
            rows = a.shape[0]
            pad = (self.row_block - rows % self.row_block) % self.row_block
            if pad > 0:
                a = torch.cat([a, a.new_zeros(pad, a.shape[1])])
            out = torch.conv2d(a[:, :, None, None], w[:, :, None, None])
            return out.reshape(rows + pad, w.shape[0])[:rows]
        return a @ w.t()

    def forward(self, x: Tensor, t: Tensor, y: Optional[Tensor] = None) -> Tensor:
        batch = x.shape[0]
        xf = x.reshape(batch, -1)
        alpha, sigma, dalpha, dsigma = process_coefficients(
            self.process, t.to(x.dtype).reshape(batch), self.beta_min, self.beta_max)
        a, sg = alpha[:, None], sigma[:, None]                         # [B, 1]
        mu, mut, musq = self._float_means(x)                           # [K, D], [D, K], [K]
        s2 = (self.stds * self.stds).to(x.dtype)[None, :]              # [1, K]
        var = a * a * s2 + sg * sg                                     # v_k, [B, K]
        # ||x_t - alpha mu_k||^2 through one product; clamp rounding below zero.
        xmu = self._times_transposed(xf, mu)                           # [B, K]
        dist = ((xf * xf).sum(1, keepdim=True) - 2.0 * a * xmu + a * a * musq[None, :]).clamp_min(0.0)
        log_norm = 0.5 * xf.shape[1] * torch.log(var)                  # (D/2) log v_k
        logit = self.log_weights.to(x.dtype)[None, :] - dist / (2.0 * var) - log_norm
        if y is not None and self.num_classes > 0:  # keep the class's components (all for the null class)
            keep = (self.component_class[None, :] == y[:, None]) | (y[:, None] == self.num_classes)
            logit = logit.masked_fill(~keep, float("-inf"))
        g = torch.softmax(logit, dim=1) / var                          # gamma_k / v_k, [B, K]
        gmu = self._times_transposed(g, mut)                           # sum_k gamma_k mu_k / v_k
        # x0hat = sum_k gamma_k (sigma^2 mu_k + s_k^2 alpha x_t) / v_k
        x0hat = sg * sg * gmu + (g * s2).sum(1, keepdim=True) * a * xf
        # eps = (x_t - alpha x0hat) / sigma, rewritten without the cancellation
        # (finite at sigma = 0): eps = sigma * sum_k gamma_k (x_t - alpha mu_k) / v_k
        eps = sg * (g.sum(1, keepdim=True) * xf - a * gmu)
        if self.prediction == "x0":
            out = x0hat
        elif self.prediction == "eps":
            out = eps
        elif self.prediction == "v":
            out = a * eps - sg * x0hat
        else:
            out = dalpha[:, None] * x0hat + dsigma[:, None] * eps
        return out.reshape(x.shape)


# --------------------------------------------------------------------------
# Saving and metadata
# --------------------------------------------------------------------------

def make_meta(process: str, prediction: str, sample_shape: List[int], data_range: List[float],
              description: str, **extra) -> dict:
    """The diffode.json of DESIGN.md section 5 (plus any extra keys)."""
    meta = {"prediction": prediction, "process": {"type": process},
            "sample_shape": list(sample_shape), "data_range": list(data_range),
            "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "num_classes": 0,
            "description": description}
    meta.update(extra)
    return meta


def save_scripted(module: torch.nn.Module, path: str, meta_text) -> None:
    """torch.jit.script + save; meta_text None means no diffode.json at all."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    extra = {} if meta_text is None else {"diffode.json": meta_text}
    torch.jit.save(torch.jit.script(module), path, _extra_files=extra)


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------
# The data sets
# --------------------------------------------------------------------------

def gauss_mean() -> Tensor:
    """A smooth 3x8x8 colour pattern in [-0.6, 0.6] (float64, exact per formula)."""
    i = torch.arange(8, dtype=torch.float64)[:, None].expand(8, 8)
    j = torch.arange(8, dtype=torch.float64)[None, :].expand(8, 8)
    red = 0.6 * (2.0 * j / 7.0 - 1.0)                        # left -> right
    green = 0.6 * (2.0 * i / 7.0 - 1.0)                      # top -> bottom
    blue = 0.6 * torch.cos(math.pi * (i + j) / 14.0)         # diagonal
    return torch.stack([red, green, blue])


GAUSS_MU_TEXT = ("mu[c,i,j] (c=channel, i=row, j=col, 0..7): c0 = 0.6*(2j/7-1), "
                 "c1 = 0.6*(2i/7-1), c2 = 0.6*cos(pi*(i+j)/14)")


def gauss_module(process: str, prediction: str) -> GaussianMixture:
    mu = gauss_mean().reshape(1, -1)
    return GaussianMixture(mu, torch.tensor([GAUSS_S]), torch.tensor([1.0]),
                           GAUSS_SHAPE, process, prediction)


def gauss_meta(process: str, prediction: str) -> dict:
    desc = (f"Single Gaussian N(mu, s^2 I), s = {GAUSS_S}, sample_shape {GAUSS_SHAPE}; "
            f"{GAUSS_MU_TEXT}; exact values in gauss_mu / gauss_s. Closed-form "
            f"{process}/{prediction} output, made by scripts/make_models.py.")
    return make_meta(process, prediction, GAUSS_SHAPE, [-1.0, 1.0], desc,
                     gauss_mu=gauss_mean().flatten().tolist(), gauss_s=GAUSS_S)


def gmm2d_components() -> Tuple[Tensor, Tensor, Tensor]:
    """Seven Gaussians on a ring of radius 2 plus a wide one at the centre."""
    n = 7
    angle = torch.arange(n, dtype=torch.float64) * (2.0 * math.pi / n) + math.pi / 2.0
    ring = 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    means = torch.cat([ring, torch.zeros(1, 2, dtype=torch.float64)])
    stds = torch.tensor([0.05, 0.08, 0.1, 0.12, 0.15, 0.18, 0.2, 0.3], dtype=torch.float64)
    weights = torch.tensor([1.0, 1.5, 1.0, 2.0, 1.0, 1.5, 1.0, 3.0], dtype=torch.float64)
    return means, stds, weights


def read_idx(path: str) -> np.ndarray:
    """Parse a gzipped IDX file (big-endian header: magic, dims; then uint8 data)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def fmnist_subset() -> Tuple[np.ndarray, np.ndarray]:
    """The first FMNIST_PER_CLASS training images of each class, class-major order."""
    images = read_idx(os.path.join(FMNIST_DIR, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(FMNIST_DIR, "train-labels-idx1-ubyte.gz"))
    index = np.concatenate([np.flatnonzero(labels == c)[:FMNIST_PER_CLASS] for c in range(10)])
    return images[index], labels[index]


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def check_forward(path: str, meta: dict) -> None:
    """Load, call at several t in float32/64, check shape, dtype, finiteness."""
    model = torch.jit.load(path)
    process = meta["process"]["type"]
    ts = {"edm": [0.0, 1e-6, SIGMA_MIN, 1.0, SIGMA_MAX],
          "flow": [0.0, 1e-6, SIGMA_MIN, 0.5, 1.0],
          "vp": [1e-5, 1e-3, 0.5, 1.0]}[process]  # vp velocity is singular at t = 0
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn([4] + meta["sample_shape"], generator=gen).to(dtype)
        for tv in ts:
            ys = [None]
            if meta.get("num_classes", 0) > 0:  # each class and the null class
                ys += [torch.arange(4) % (meta["num_classes"] + 1)]
            for y in ys:
                with torch.no_grad():
                    out = model(x, torch.full([4], tv, dtype=dtype), y)
                assert out.shape == x.shape and out.dtype == dtype, (path, out.shape, out.dtype)
                assert torch.isfinite(out).all(), f"{path}: non-finite output at t={tv} {dtype}"


def sigma_tilde_to_t(process: str, st: float) -> float:
    """Inverse of sigma~(t) = sigma(t)/alpha(t)."""
    if process == "edm":
        return st
    if process == "flow":
        return st / (1.0 + st)
    db = BETA_MAX - BETA_MIN  # solve 0.25 db t^2 + 0.5 bmin t = 0.5 log(1 + st^2)
    return (-0.5 * BETA_MIN + math.sqrt(0.25 * BETA_MIN ** 2 + 0.5 * db * math.log1p(st * st))) / (0.5 * db)


def output_to_x0(prediction: str, o: Tensor, x: Tensor, coeffs) -> Tensor:
    """x0 estimate from the network output (DESIGN.md section 2 table)."""
    alpha, sigma, dalpha, dsigma = coeffs
    if prediction == "x0":
        return o
    if prediction == "eps":
        return (x - sigma * o) / alpha
    if prediction == "v":
        return (alpha * x - sigma * o) / (alpha * alpha + sigma * sigma)
    return (dsigma * x - sigma * o) / (dsigma * alpha - sigma * dalpha)


def check_gauss_metadata(path: str) -> None:
    """gauss_mu / gauss_s in the archive's diffode.json are exactly the model's mu, s."""
    extra = {"diffode.json": ""}
    model = torch.jit.load(path, _extra_files=extra)
    meta = json.loads(extra["diffode.json"])
    assert torch.equal(torch.tensor(meta["gauss_mu"], dtype=torch.float64), model.means.flatten())
    assert torch.equal(torch.tensor([meta["gauss_s"]], dtype=torch.float64), model.stds)


def check_gauss_equivalence(out_dir: str) -> float:
    """All 12 variants give the closed-form D(x~, sigma~) in float64; returns max error."""
    mu = gauss_mean()
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for st in [SIGMA_MIN, 0.1, 1.0, 10.0, SIGMA_MAX]:
        xt_scaled = mu + st * torch.randn([2] + GAUSS_SHAPE, generator=gen, dtype=torch.float64)
        exact = mu + GAUSS_S ** 2 / (GAUSS_S ** 2 + st ** 2) * (xt_scaled - mu)
        for process in PROCESSES:
            t = torch.full([2], sigma_tilde_to_t(process, st), dtype=torch.float64)
            coeffs = [c[:, None, None, None] for c in process_coefficients(process, t, BETA_MIN, BETA_MAX)]
            x = coeffs[0] * xt_scaled
            for prediction in PREDICTIONS:
                model = torch.jit.load(os.path.join(out_dir, "gauss", f"{process}_{prediction}.pt"))
                with torch.no_grad():
                    x0 = output_to_x0(prediction, model(x, t), x, coeffs)
                err = (x0 - exact).abs().max().item()
                assert err < 1e-10, f"gauss {process}/{prediction} at sigma~={st}: error {err:.3g}"
                worst = max(worst, err)
    return worst


def fmnist_probe(images: np.ndarray, gen: torch.Generator) -> Tuple[Tensor, Tensor, Tensor]:
    """64 training means, noisy copies of them at per-row sigmas in [0.002, 80], and t."""
    mu = torch.from_numpy(images[:64].astype(np.float64)).reshape(64, 1, 28, 28) / 127.5 - 1.0
    t = torch.logspace(math.log10(SIGMA_MIN), math.log10(SIGMA_MAX), 64, dtype=torch.float64)
    x = mu + t[:, None, None, None] * torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    return mu, x, t


def check_fmnist_exact(model, images: np.ndarray) -> None:
    """Near a training image the mixture acts as that one Gaussian; float32 ~ float64."""
    gen = torch.Generator().manual_seed(2)
    mu = torch.from_numpy(images[:64].astype(np.float64)).reshape(64, 1, 28, 28) / 127.5 - 1.0
    x = mu + SIGMA_MIN * torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    t = torch.full([64], SIGMA_MIN, dtype=torch.float64)
    single = mu + FMNIST_S ** 2 / (FMNIST_S ** 2 + SIGMA_MIN ** 2) * (x - mu)
    with torch.no_grad():
        for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
            err = (model(x.to(dtype), t.to(dtype)).double() - single).abs().max().item()
            assert err < tol, f"fmnist_exact {dtype}: does not denoise to its training image ({err})"
        _, x, t = fmnist_probe(images, gen)
        diff = (model(x.float(), t.float()).double() - model(x, t)).abs().max().item()
    print(f"fmnist_exact: float32 vs float64 output over sigma in [0.002, 80]: max diff {diff:.2e}")
    assert diff < 1e-3


def check_batch_invariance(model, x: Tensor, t: Tensor) -> None:
    """Each row's output is bitwise the same whatever the batch and thread count."""
    threads = torch.get_num_threads()
    with torch.no_grad():
        full = model(x, t)
        for n in (1, 2, 3, 4):
            torch.set_num_threads(n)
            for lo, hi in ((0, 64), (0, 1), (5, 10), (3, 20), (40, 64), (63, 64)):
                assert torch.equal(model(x[lo:hi], t[lo:hi]), full[lo:hi]), \
                    f"batch rows {lo}:{hi} with {n} threads differ from batch 64 ({x.dtype})"
    torch.set_num_threads(threads)


def time_forward(model, x: Tensor, t: Tensor, threads: int = 2, calls: int = 20) -> float:
    """Median ms per forward call with `threads` intra-op threads."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    times = []
    with torch.no_grad():
        for k in range(calls + 3):
            start = time.perf_counter()
            model(x, t)
            if k >= 3:  # the first calls warm up (and fill the means cache)
                times.append(time.perf_counter() - start)
    torch.set_num_threads(saved)
    return 1000.0 * float(np.median(times))


# --------------------------------------------------------------------------
# Building everything
# --------------------------------------------------------------------------

def write_model(out_dir: str, name: str, module: torch.nn.Module, meta: dict, summary: list) -> str:
    path = os.path.join(out_dir, name)
    save_scripted(module, path, json.dumps(meta))
    check_forward(path, meta)
    summary.append((name, meta))
    return path


def build_gauss(out_dir: str, summary: list) -> None:
    write_model(out_dir, "gauss.pt", gauss_module("edm", "x0"), gauss_meta("edm", "x0"), summary)
    for process in PROCESSES:
        for prediction in PREDICTIONS:
            write_model(out_dir, f"gauss/{process}_{prediction}.pt", gauss_module(process, prediction),
                        gauss_meta(process, prediction), summary)


def build_gmm2d(out_dir: str, summary: list) -> None:
    means, stds, weights = gmm2d_components()
    desc = ("2-D Gaussian mixture: 7 components on a ring of radius 2 (first at the top, "
            "counter-clockwise; std 0.05..0.2, weights 1..2) plus a centre component "
            "(std 0.3, weight 3). Closed-form flow/velocity output, made by scripts/make_models.py.")
    meta = make_meta("flow", "velocity", [2], [-3.0, 3.0], desc)
    write_model(out_dir, "gmm2d.pt", GaussianMixture(means, stds, weights, [2], "flow", "velocity"),
                meta, summary)


def build_gmm2d_cond(out_dir: str, summary: list) -> None:
    means, stds, weights = gmm2d_components()
    classes = torch.arange(means.shape[0])
    desc = ("gmm2d.pt made class-conditional: class c (0-7) is component c alone (0-6 the ring, "
            "counter-clockwise from the top; 7 the centre), y = 8 (the null class) the whole mixture. "
            "Exact flow/velocity output for forward(x, t, y), made by scripts/make_models.py.")
    meta = make_meta("flow", "velocity", [2], [-3.0, 3.0], desc, num_classes=int(classes.numel()),
                     null_class=True)
    write_model(out_dir, "gmm2d_cond.pt",
                GaussianMixture(means, stds, weights, [2], "flow", "velocity", component_class=classes),
                meta, summary)


def build_fmnist_exact(out_dir: str, summary: list) -> float:
    images, _ = fmnist_subset()
    k = len(images)
    means = torch.from_numpy(images.reshape(k, -1).copy())
    module = GaussianMixture(means, torch.full([k], FMNIST_S), torch.ones(k), [1, 28, 28],
                             "edm", "x0", scale=1.0 / 127.5, offset=-1.0)
    desc = (f"Mixture of {k} equal-weight Gaussians N(mu_k, {FMNIST_S}^2 I) centred on the first "
            f"{FMNIST_PER_CLASS} Fashion-MNIST training images of each class (class-major order), "
            "mu = pixel/127.5 - 1 stored as uint8. Exact edm/x0 denoiser (it memorises the "
            "training set), made by scripts/make_models.py.")
    meta = make_meta("edm", "x0", [1, 28, 28], [-1.0, 1.0], desc)
    path = write_model(out_dir, "fmnist_exact.pt", module, meta, summary)
    size = os.path.getsize(path)
    print(f"fmnist_exact.pt: {size} bytes ({size / 1e6:.2f} MB, limit {FMNIST_MAX_BYTES / 1e6:.0f} MB)")
    assert size <= FMNIST_MAX_BYTES
    model = torch.jit.load(path)
    check_fmnist_exact(model, images)
    _, x, t = fmnist_probe(images, torch.Generator().manual_seed(3))
    for dtype in (torch.float32, torch.float64):
        check_batch_invariance(model, x.to(dtype), t.to(dtype))
    return time_forward(model, x.float(), t.float())


# --------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------

def meta_for_readme(meta: dict) -> str:
    """The metadata as JSON, one key per line, gauss_mu abbreviated."""
    shown = dict(meta)
    if "gauss_mu" in shown:
        shown["gauss_mu"] = f"[{len(meta['gauss_mu'])} float64 values]"
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in shown.items()) + "\n}"


def file_line(out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    return f"`{name}` | {os.path.getsize(path)} bytes | `{sha256(path)}`"


SECTIONS = {
    "gauss.pt": ("Single Gaussian (edm / x0)",
                 "Gaussian data N(mu, 0.5^2 I) on 3x8x8 images; the exact denoiser "
                 "D(x, sigma) = mu + s^2/(s^2+sigma^2)(x - mu), so the exact ODE trajectory is "
                 "x(sigma) - mu = (x(sigma_T) - mu) sqrt((s^2+sigma^2)/(s^2+sigma_T^2)). "
                 "mu and s are in the metadata keys `gauss_mu` (flat, C-order, exact float64) "
                 "and `gauss_s`. Used for solver convergence-order tests."),
    "gmm2d.pt": ("2-D Gaussian mixture (flow / velocity)",
                 "Eight isotropic Gaussians in the plane (a ring of seven plus a centre), exact "
                 "rectified-flow velocity. For scatter plots in the box [-3, 3]^2."),
    "fmnist_exact.pt": ("Fashion-MNIST exact mixture (edm / x0)",
                        "4000 equal-weight Gaussians N(mu_k, 0.05^2 I) centred on the first 400 "
                        "Fashion-MNIST training images of each class; the exact denoiser of that "
                        "mixture, so samples are (slightly noisy) training images. Means are stored "
                        "as uint8 (mu = u8/127.5 - 1) and converted once per dtype/device into a "
                        "cached attribute on the first forward call (so the first call is not "
                        "thread-safe: make it, e.g. the contract probe, before calling from several "
                        "threads). On CPU float32 its two products run as oneDNN 1x1 convolutions "
                        "(Debian's BLAS is the slow reference one), batch padded to 16 rows so "
                        "each sample's output does not depend on batch size or thread count; "
                        "the script prints the time per call at batch 64 (about 20 ms float32 on "
                        "2 cores; float64 takes the BLAS route, roughly 20x slower)."),
}


README_BEGIN = "<!-- begin: written by scripts/make_models.py, do not edit by hand -->"
README_END = "<!-- end: written by scripts/make_models.py -->"


def readme_block(out_dir: str, summary: list) -> str:
    """This script's part of models/README.md: one section per model it makes."""
    metas = dict(summary)
    lines = [README_BEGIN, "## Closed-form models", "",
             "Made by one deterministic command (re-running it rewrites identical bytes):",
             "", "```", COMMAND, "```", "",
             "Each is a scripted `GaussianMixture` (scripts/make_models.py): data "
             "sum_k pi_k N(mu_k, s_k^2 I) with a closed-form posterior mean, evaluated in the "
             "input dtype (float32 or float64), output = what a network of the file's prediction "
             "type would return. `diffode.json` holds the metadata of DESIGN.md section 5.", ""]
    for name, (title, text) in SECTIONS.items():
        lines += [f"### {name} — {title}", "", text, "", "File | size | sha256", "---|---|---",
                  file_line(out_dir, name), "", "Metadata:", "",
                  "```json", meta_for_readme(metas[name]), "```", ""]
    lines += ["### gauss/{edm,vp,flow}_{x0,eps,v,velocity}.pt — the same Gaussian, every "
              "parameterization", "",
              "The Gaussian of gauss.pt exported under every process x prediction "
              "(metadata identical to gauss.pt's except `process` and `prediction`; sigma_min/sigma_max "
              "stay 0.002/80 so one sigma~ grid serves all). At the same scaled point "
              "(x~ = x_t/alpha, sigma~ = sigma/alpha) all 12 give the same x0 estimate to 1e-10 in "
              "float64 (checked by the script). vp/velocity is singular at t = 0 exactly "
              "(sigma' ~ 1/sqrt(t)); use t >= 1e-3 as DESIGN.md says.", "",
              "File | size | sha256", "---|---|---"]
    lines += [file_line(out_dir, f"gauss/{p}_{q}.pt") for p in PROCESSES for q in PREDICTIONS]
    return "\n".join(lines + [README_END])


def write_readme(out_dir: str, summary: list) -> None:
    """Replace this script's block of README.md, keeping whatever others wrote around it."""
    path = os.path.join(out_dir, "README.md")
    text = open(path).read() if os.path.exists(path) else "# Shipped models\n\n"
    block = readme_block(out_dir, summary)
    if README_BEGIN in text and README_END in text:
        head, rest = text.split(README_BEGIN, 1)
        text = head + block + rest.split(README_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "models"), help="output folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    summary: list = []
    build_gauss(args.out, summary)
    build_gmm2d(args.out, summary)
    build_gmm2d_cond(args.out, summary)
    fmnist_ms = build_fmnist_exact(args.out, summary)
    check_gauss_metadata(os.path.join(args.out, "gauss.pt"))
    worst = check_gauss_equivalence(args.out)
    write_readme(args.out, summary)
    for name, meta in summary:
        size = os.path.getsize(os.path.join(args.out, name))
        print(f"{name:26s} {size:9d} bytes  {meta['process']['type']:4s} {meta['prediction']:8s} "
              f"shape {meta['sample_shape']}")
    print(f"gauss variants agree with the closed form: max |x0hat - D| = {worst:.2e} (float64)")
    print(f"fmnist_exact forward, batch 64, float32, 2 threads: {fmnist_ms:.1f} ms/call")


if __name__ == "__main__":
    main()
