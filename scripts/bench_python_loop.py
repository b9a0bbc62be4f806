#!/usr/bin/env python3
"""The same sampling run as a diffode run directory, done by a plain Python/torch loop.

Reads RUN_DIR/manifest.json (written by `diffode sample`), loads the same TorchScript
model with torch.jit.load, draws the same noise (sample k: torch.manual_seed(seed + k);
torch.randn(shape), DESIGN.md §6), integrates the probability-flow ODE on the manifest's
sigma grid with the same solver, and compares with RUN_DIR/samples.npy.

Prints one JSON line: max |python - diffode|, the Python sampling wall time, the NFE it
counted, and what it ran. The timed region is what diffode's timings.sample_s covers:
noise, the solver loop and the conversion to float32, for every batch, after loading the
model and the same batch-2 probe call diffode makes; each batch is also timed alone
(python_batch_s, as diffode's timings.batch_s), so the first batch (cold: TorchScript's
profiling and graph optimization) and the later ones (warm) can be compared separately.

Usage: /usr/bin/python3 scripts/bench_python_loop.py RUN_DIR [--threads N] [--warmup K]
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch

RUN_OPTIONS = {"path", "device", "threads", "dtype"}  # config model.* keys that are not metadata


# ---------------------------------------------------------------- noise processes (DESIGN §2)

class Process:
    """alpha, sigma, their t-derivatives and t(sigma_tilde), as Python floats (doubles)."""

    def __init__(self, spec):
        self.kind = spec["type"]
        self.b0 = spec.get("beta_min", 0.1)
        self.b1 = spec.get("beta_max", 20.0)
        if self.kind not in ("edm", "vp", "flow"):
            raise SystemExit(f"unknown process {self.kind!r}")

    def _vp_log_alpha(self, t):
        return -0.25 * (self.b1 - self.b0) * t * t - 0.5 * self.b0 * t

    def alpha(self, t):
        if self.kind == "edm":
            return 1.0
        if self.kind == "flow":
            return 1.0 - t
        return math.exp(self._vp_log_alpha(t))

    def sigma(self, t):
        if self.kind == "edm":
            return t
        if self.kind == "flow":
            return t
        return math.sqrt(-math.expm1(2.0 * self._vp_log_alpha(t)))

    def dalpha(self, t):
        if self.kind == "edm":
            return 0.0
        if self.kind == "flow":
            return -1.0
        return self.alpha(t) * (-0.5 * (self.b1 - self.b0) * t - 0.5 * self.b0)

    def dsigma(self, t):
        if self.kind in ("edm", "flow"):
            return 1.0
        return -self.alpha(t) * self.dalpha(t) / self.sigma(t)

    def time_of(self, s):  # model time of sigma_tilde
        if self.kind == "edm":
            return s
        if self.kind == "flow":
            return 1.0 - 1.0 / (1.0 + s)  # s = inf gives t = 1 exactly
        c = math.log1p(s * s)
        db = self.b1 - self.b0
        if db == 0:
            return c / self.b0
        return 2.0 * c / (self.b0 + math.sqrt(self.b0 * self.b0 + 2.0 * db * c))


# ---------------------------------------------------------------- the denoiser D(x, sigma)

class Denoiser:
    """D(x_tilde, sigma_tilde) from the network: scaling, prediction -> x0, guidance."""

    def __init__(self, model, meta, model_dtype, state_dtype, guidance):
        self.model = model
        self.meta = meta
        self.process = Process(meta["process"])
        self.prediction = meta["prediction"]
        self.num_classes = int(meta.get("num_classes", 0))
        self.model_dtype = model_dtype
        self.state_dtype = state_dtype
        self.guidance = guidance
        self.labels = None
        self.calls = 0

    def x0(self, o, x_t, t):
        p = self.process
        a, s, da, ds = p.alpha(t), p.sigma(t), p.dalpha(t), p.dsigma(t)
        if self.prediction == "x0":
            return o
        if self.prediction == "eps":
            return (x_t - o * s) / a
        if self.prediction == "v":
            return (x_t * a - o * s) / (a * a + s * s)
        if self.prediction == "velocity":
            return (x_t * ds - o * s) / (ds * a - s * da)
        raise SystemExit(f"unknown prediction {self.prediction!r}")

    def __call__(self, x, sigma):
        self.calls += 1
        p = self.process
        b = x.shape[0]
        t = p.time_of(sigma)
        # model space x_t = alpha x_tilde; at sigma = inf x is the noise and x_t = sigma(1) eps
        x_t = x * (p.sigma(t) if math.isinf(sigma) else p.alpha(t))
        x_in = x_t.to(self.model_dtype)
        t_in = torch.full((b,), t, dtype=self.model_dtype, device=x.device)
        if self.num_classes == 0:
            o = self.model(x_in, t_in)
        else:
            y = self.labels if self.labels is not None else torch.full((b,), self.num_classes, dtype=torch.long)
            if self.guidance != 1.0:  # class rows and null-class rows in one call
                y = torch.cat([y, torch.full((b,), self.num_classes, dtype=torch.long)])
                x_in, t_in = torch.cat([x_in, x_in]), torch.cat([t_in, t_in])
            o = self.model(x_in, t_in, y.to(x.device))
        o = o.to(self.state_dtype)
        if self.num_classes == 0 or self.guidance == 1.0:
            return self.x0(o, x_t, t)
        d_class = self.x0(o[:b], x_t, t)
        d_null = self.x0(o[b:], x_t, t)
        return d_null + (d_class - d_null) * self.guidance


def velocity(D, x, sigma):  # v = (x - D(x, sigma)) / sigma
    return (x - D(x, sigma)) / sigma


def first_velocity(D, x, sigma, afs):  # AFS: d_0 = x / sqrt(1 + sigma^2), no model call
    return x / math.sqrt(1.0 + sigma * sigma) if afs else velocity(D, x, sigma)


# ---------------------------------------------------------------- solvers (DESIGN §4)

def euler(D, x, sigmas, afs, max_order):
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = first_velocity(D, x, s, afs) if i == 0 else velocity(D, x, s)
        x = torch.add(x, d, alpha=s_next - s)
    return x


def heun(D, x, sigmas, afs, max_order):
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        h = s_next - s
        d = first_velocity(D, x, s, afs) if i == 0 else velocity(D, x, s)
        if s_next > 0:
            d2 = velocity(D, torch.add(x, d, alpha=h), s_next)
            x = torch.add(x, d, alpha=0.5 * h).add_(d2, alpha=0.5 * h)
        else:  # Euler on a step to sigma = 0
            x = torch.add(x, d, alpha=h)
    return x


def dpmpp2m(D, x, sigmas, afs, max_order):
    n = len(sigmas) - 1
    m_prev, h_prev = None, 0.0
    for i in range(n):
        s, s_next = sigmas[i], sigmas[i + 1]
        m0 = x - s * first_velocity(D, x, s, afs) if i == 0 and afs else D(x, s)
        if s_next == 0:  # last step to sigma = 0: x = D
            x = m0.clone()
            h = 0.0
        else:
            order = min(2, i + 1)
            if n < 10:  # lower order on the last steps of short grids
                order = min(order, n - i)
            h = math.log(s / s_next)
            phi_1 = math.expm1(-h)
            if order == 1:
                x = x * (s_next / s) - m0 * phi_1
            else:
                x = x * (s_next / s) - (m0 + (m0 - m_prev) * (0.5 * h / h_prev)) * phi_1
        m_prev, h_prev = m0, h
    return x


IPNDM_WEIGHTS = [
    [1.0],
    [3.0 / 2, -1.0 / 2],
    [23.0 / 12, -16.0 / 12, 5.0 / 12],
    [55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24],
]


def ipndm(D, x, sigmas, afs, max_order):
    max_order = max_order if max_order > 0 else 4
    ds = []  # newest first
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        ds.insert(0, first_velocity(D, x, s, afs) if i == 0 else velocity(D, x, s))
        del ds[max_order:]
        order = min(max_order, i + 1)
        h = s_next - s
        for j, w in enumerate(IPNDM_WEIGHTS[order - 1]):
            x = torch.add(x, ds[j], alpha=h * w)
    return x


SOLVERS = {"euler": euler, "heun": heun, "dpmpp2m": dpmpp2m, "ipndm": ipndm}


def sample(D, solver, eps, sigmas, afs, max_order, denoise_to_zero):
    """x at sigmas[-1] from noise eps (DESIGN §3)."""
    if math.isinf(sigmas[0]):
        # flow model from t = 1: the first interval is the DDIM limit D(eps, inf) + sigma_1 eps
        # (AFS takes D = 0 there); the solver runs on the rest of the grid without AFS
        x = eps * sigmas[1] if afs else torch.add(D(eps, sigmas[0]), eps, alpha=sigmas[1])
        if len(sigmas) > 2:
            x = solver(D, x, sigmas[1:], False, max_order)
    else:
        x = solver(D, eps * sigmas[0], sigmas, afs, max_order)
    if denoise_to_zero:
        x = D(x, sigmas[-1])
    return x


# ---------------------------------------------------------------- the run

def make_noise(seed, first, count, shape):
    """Row k: the numbers of torch.manual_seed(seed + first + k); torch.randn(shape). A
    private CPU generator draws the same numbers about 10x faster than reseeding the
    global one (torch.manual_seed also seeds every other device's generator)."""
    gen = torch.Generator()
    rows = []
    for k in range(first, first + count):
        gen.manual_seed(seed + k)
        rows.append(torch.randn(shape, generator=gen))
    return torch.stack(rows)


def manual_seed_noise_s(seed, n, shape):
    """Seconds to draw the run's noise literally as DESIGN.md §6 writes it (torch.manual_seed(seed
    + k); torch.randn(shape) per sample): what a first Python loop would do before optimizing."""
    t0 = time.perf_counter()
    for k in range(n):
        torch.manual_seed(seed + k)
        torch.randn(shape)
    return time.perf_counter() - t0


def run_all(D, solver, run, labels, state_dtype, device, clock):
    """All batches of the run -> [N, *shape] float32; clock["noise_s"] += time spent drawing noise."""
    cfg = run["config"]
    n, batch, seed = cfg["sampling"]["num_samples"], cfg["sampling"]["batch_size"], cfg["sampling"]["seed"]
    shape = run["model"]["metadata"]["sample_shape"]
    sigmas = [math.inf if s == "inf" else float(s) for s in run["schedule"]["sigmas"]]
    out = []
    for first in range(0, n, batch):
        count = min(batch, n - first)
        t0 = time.perf_counter()
        eps = make_noise(seed, first, count, shape).to(dtype=state_dtype, device=device)
        clock["noise_s"] += time.perf_counter() - t0
        D.labels = torch.tensor(labels[first:first + count], dtype=torch.long) if labels else None
        x = sample(D, solver, eps, sigmas, run["solver"]["afs"], run["solver"]["max_order"],
                   run["schedule"]["denoise_to_zero"])
        out.append(x.to(device="cpu", dtype=torch.float32))
        clock.setdefault("batch_s", []).append(time.perf_counter() - t0)
    return torch.cat(out)


def config_labels(cfg, meta):
    """Class labels of every sample from sampling.labels, where the manifest lists none."""
    sc, n_classes, n = cfg["sampling"], int(meta.get("num_classes", 0)), cfg["sampling"]["num_samples"]
    rule, seed = sc.get("labels"), sc["seed"]
    if rule is None or n_classes == 0:
        return []
    if isinstance(rule, list):
        return [rule[k % len(rule)] for k in range(n)]
    if rule == "cycle":
        return [k % n_classes for k in range(n)]
    out, gen = [], torch.Generator()
    for k in range(n):  # "random": drawn after the sample's noise, from the same stream
        gen.manual_seed(seed + k)
        torch.randn(meta["sample_shape"], generator=gen)
        out.append(int(torch.randint(n_classes, (1,), generator=gen)))
    return out


def probe(model, D, dtype, device):
    """One model call on a batch of 2, as diffode's load does (its contract probe): so the
    first timed run below starts from the same TorchScript state as diffode's run."""
    shape = [2] + list(D.meta["sample_shape"])
    sigma_min = float(D.meta.get("sigma_min", 0.002))
    sigma_max = D.meta.get("sigma_max", 80.0)
    sigma_max = math.inf if isinstance(sigma_max, str) else float(sigma_max)
    t_in = torch.full((2,), D.process.time_of(math.sqrt(max(sigma_min, 1e-3) * min(sigma_max, 80.0))),
                      dtype=dtype, device=device)
    with torch.no_grad():
        x = torch.randn(shape, dtype=dtype, device=device)
        if D.num_classes > 0:
            null = D.num_classes if D.meta.get("null_class") else 0
            model(x, t_in, torch.tensor([0, null], dtype=torch.long, device=device))
        else:
            model(x, t_in)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", help="a diffode sample output directory (manifest.json, samples.npy)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (default: the thread count diffode used, from its manifest)")
    ap.add_argument("--warmup", type=int, default=0,
                    help="untimed full runs before the timed one (default 0: the timed run is cold, as diffode's is;"
                         " its later batches are warm)")
    args = ap.parse_args()

    with open(os.path.join(args.run_dir, "manifest.json")) as f:
        manifest = json.load(f)
    run = manifest["run"]
    cfg = run["config"]
    solver_name = run["solver"]["name"]
    if solver_name not in SOLVERS:
        raise SystemExit(f"solver {solver_name!r} not reproduced here (have {', '.join(SOLVERS)})")
    if run["solver"].get("predictor"):
        raise SystemExit("learned (AMED) solvers are not reproduced here")
    timings = manifest.get("timings")
    if timings is None and os.path.exists(os.path.join(args.run_dir, "timings.json")):
        with open(os.path.join(args.run_dir, "timings.json")) as f:
            timings = json.load(f)
    threads = args.threads or (timings or {}).get("threads") or cfg["model"].get("threads") or os.cpu_count()
    torch.set_num_threads(threads)

    # the model and its metadata: diffode.json in the archive, overridden by config model.*
    path = run["model"]["path"]
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    if sha != run["model"]["sha256"]:
        raise SystemExit(f"{path}: sha256 {sha} differs from the run's {run['model']['sha256']}")
    device = torch.device(cfg["model"].get("device", "cpu"))
    extra = {"diffode.json": ""}
    model = torch.jit.load(path, map_location=device, _extra_files=extra)
    model.eval()
    meta = json.loads(extra["diffode.json"]) if extra["diffode.json"] else {}
    meta.update({k: v for k, v in cfg["model"].items() if k not in RUN_OPTIONS})
    meta.setdefault("num_classes", 0)
    for key in ("prediction", "process", "sample_shape", "num_classes"):  # as diffode resolved them?
        here, there = meta.get(key), run["model"]["metadata"].get(key)
        if key == "process":
            here, there = vars(Process(here)), vars(Process(there))
        if here != there:
            raise SystemExit(f"metadata {key}: {here!r} here, {there!r} in the run")
    model_dtype = getattr(torch, cfg["model"].get("dtype", "float32"))
    if model_dtype != torch.float32:
        model.to(model_dtype)
    state_dtype = torch.float64 if run["solver"]["precision"] == "float64" else torch.float32
    guidance = float(cfg["sampling"].get("guidance", 1.0))
    labels = manifest["labels"] if "labels" in manifest else config_labels(cfg, meta)

    D = Denoiser(model, meta, model_dtype, state_dtype, guidance)
    probe(model, D, model_dtype, device)
    solver = SOLVERS[solver_name]
    first_s = None  # the first run after loading (cold: TorchScript still profiling/optimizing)
    with torch.inference_mode():
        for k in range(args.warmup):
            t0 = time.perf_counter()
            run_all(D, solver, run, labels, state_dtype, device, {"noise_s": 0.0})
            if k == 0:
                first_s = time.perf_counter() - t0
        D.calls = 0
        clock = {"noise_s": 0.0}
        t0 = time.perf_counter()
        x = run_all(D, solver, run, labels, state_dtype, device, clock)
        python_s = time.perf_counter() - t0

    n, batch = cfg["sampling"]["num_samples"], cfg["sampling"]["batch_size"]
    nfe = D.calls / math.ceil(n / batch)
    ref = np.load(os.path.join(args.run_dir, "samples.npy"))
    ours = x.numpy()
    if ref.shape != ours.shape:
        raise SystemExit(f"shape {ours.shape} here, {ref.shape} in samples.npy")
    diff = float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64))))
    result = {
        "model": os.path.basename(path), "solver": solver_name, "nfe": nfe, "nfe_diffode": run["nfe"],
        "steps": run["solver"]["steps"], "afs": run["solver"]["afs"], "batch": batch, "num_samples": n,
        "precision": run["solver"]["precision"], "threads": threads, "max_abs_diff": diff,
        "bitwise_equal": bool(np.array_equal(ours, ref)), "finite": bool(np.isfinite(ours).all()),
        "python_s": python_s, "python_noise_s": clock["noise_s"], "python_first_s": first_s,
        "python_batch_s": clock.get("batch_s", []),
        "python_manual_seed_noise_s": manual_seed_noise_s(cfg["sampling"]["seed"], n, run["model"]["metadata"]["sample_shape"]),
        "diffode_s": (timings or {}).get("sample_s"), "diffode_batch_s": (timings or {}).get("batch_s", []),
    }
    print(json.dumps(result))
    return 0 if nfe == run["nfe"] else 1


if __name__ == "__main__":
    sys.exit(main())
