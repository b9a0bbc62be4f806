#!/usr/bin/python3
"""Write the files the C++ tests read (tests/data/).

  randn_reference.json   torch.manual_seed(seed); torch.randn(shape) values (DESIGN.md 6)
  no_forward.pt          forward(x) only (plus an exported features(x)): wrong arity
  wrong_shape.pt         forward(x, t) returns x[:, :1]
  wrong_dtype.pt         forward(x, t) returns int64
  nan_model.pt           gauss edm/x0 denoiser, NaN wherever t < 1
  raises_model.pt        gauss edm/x0 denoiser, raising once any t < 0.1
  shape_off_probe.pt     gauss edm/x0 denoiser, wrong shape for batches other than 2
  nan_at_sigma.pt        gauss edm/x0 denoiser, NaN at one sigma only (a point of a 3-step grid)
  ddpm_gauss_eps.pt      gauss, discrete DDPM linear table, eps (its own log-sigma interpolation)
  ddpm_gauss_v.pt        the same, v-prediction
  ddpm_gauss_int_t.pt    ddpm_gauss_eps.pt raising unless t is a whole timestep; quantize: true
  flow_gauss_t1000.pt    gauss flow/velocity called with t in [0, 1000]; time_scale 1000
  no_meta.pt             gauss edm/x0 without diffode.json
  bad_meta.pt            gauss edm/x0 whose diffode.json is not JSON
  not_a_model.pt         a text file
  README.md              this list, with what each is for

Run:  /usr/bin/python3 scripts/make_test_fixtures.py [--out DIR]
Deterministic and idempotent.
"""
import argparse
import json
import os
import sys

import torch
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402  (GaussianMixture, metadata and saving helpers)

COMMAND = "/usr/bin/python3 scripts/make_test_fixtures.py"
RANDN_SEEDS = [0, 1, 7, 12345]
RANDN_SHAPES = [[3, 8, 8], [2], [1, 28, 28]]
SHAPE = make_models.GAUSS_SHAPE


# --------------------------------------------------------------------------
# Broken models
# --------------------------------------------------------------------------

class NoForward(torch.nn.Module):
    """forward takes only x, so forward(x, t) is the wrong arity."""

    def forward(self, x: Tensor) -> Tensor:
        return x

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        return x.mean(dim=[2, 3])


class WrongShape(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return x[:, :1]


class WrongDtype(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return x.to(torch.int64)


class NanBelowOne(torch.nn.Module):
    """The wrapped model's output, NaN in every row whose t < 1."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.inner(x, t)
        t = t.to(out.dtype)
        poison = torch.where(t < 1.0, torch.full_like(t, float("nan")), torch.zeros_like(t))
        return out + poison.reshape([t.shape[0]] + [1] * (out.dim() - 1))


class RaisesBelowATenth(torch.nn.Module):
    """The wrapped model, raising an error once any t < 0.1 (after the probe passed)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if bool((t < 0.1).any()):
            raise RuntimeError("fixture: this model fails for t < 0.1")
        return self.inner(x, t)


class ShapeOffProbe(torch.nn.Module):
    """The wrapped model, right for the probe's batch of 2; for other batches x[:, :1]."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.inner(x, t)
        if x.shape[0] == 2:
            return out
        return out[:, :1]


class NanAt(torch.nn.Module):
    """The wrapped model's output, NaN in every row whose t is within 1e-6 (relative) of t_star."""

    t_star: float

    def __init__(self, inner: torch.nn.Module, t_star: float):
        super().__init__()
        self.inner = inner
        self.t_star = t_star

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.inner(x, t)
        t = t.to(torch.float64)
        hit = (t - self.t_star).abs() <= 1e-6 * self.t_star
        poison = torch.where(hit, torch.full_like(t, float("nan")), torch.zeros_like(t)).to(out.dtype)
        return out + poison.reshape([t.shape[0]] + [1] * (out.dim() - 1))


# --------------------------------------------------------------------------
# Models in the conventions of models people already have (DESIGN.md 2, discrete)
# --------------------------------------------------------------------------

DDPM_STEPS = 1000


def ddpm_linear_alphas_cumprod() -> Tensor:
    """alpha-bar of DDPM's linear betas 1e-4 .. 0.02 over 1000 timesteps (float64)."""
    betas = torch.linspace(1e-4, 0.02, DDPM_STEPS, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


class DiscreteGauss(torch.nn.Module):
    """Exact eps or v output for Gaussian data N(mu, s^2 I) in the discrete convention:
    called with a (fractional) timestep t in [0, T-1], whose sigma_tilde is the linear
    interpolation in log sigma_tilde of the table sigma_tilde_i = sqrt((1 - abar_i)/abar_i);
    x_t = sqrt(abar) x0 + sqrt(1 - abar) eps. Written here, independently of diffode."""

    prediction: str
    s: float

    def __init__(self, mu: Tensor, s: float, alphas_cumprod: Tensor, prediction: str):
        super().__init__()
        assert prediction in ("eps", "v")
        self.prediction = prediction
        self.s = s
        self.register_buffer("mu", mu.reshape(-1).to(torch.float64))
        self.register_buffer("log_sigmas", 0.5 * torch.log((1.0 - alphas_cumprod) / alphas_cumprod))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        batch = x.shape[0]
        n = self.log_sigmas.shape[0]
        tc = t.to(torch.float64).reshape(batch).clamp(0.0, n - 1.0)
        k = tc.floor().clamp(max=n - 2.0).to(torch.int64)
        lo, hi = self.log_sigmas[k], self.log_sigmas[k + 1]
        st = torch.exp(lo + (tc - k.to(torch.float64)) * (hi - lo))[:, None]
        a = 1.0 / torch.sqrt(1.0 + st * st)
        sg = st * a
        xt = x.to(torch.float64).reshape(batch, -1)
        var = a * a * self.s * self.s + sg * sg
        eps = sg * (xt - a * self.mu[None, :]) / var
        x0 = self.mu[None, :] + a * self.s * self.s * (xt - a * self.mu[None, :]) / var
        out = eps if self.prediction == "eps" else a * eps - sg * x0
        return out.to(x.dtype).reshape(x.shape)


class WholeTimestepsOnly(torch.nn.Module):
    """The wrapped model, raising unless every t is a whole number (a trained timestep)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if bool((t != torch.round(t)).any()):
            raise RuntimeError("fixture: called between trained timesteps")
        return self.inner(x, t)


class TimeScaled(torch.nn.Module):
    """The wrapped model, taking t * scale (a network trained on t in [0, scale])."""

    scale: float

    def __init__(self, inner: torch.nn.Module, scale: float):
        super().__init__()
        self.inner = inner
        self.scale = scale

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.inner(x, t / self.scale)


def discrete_gauss(prediction: str) -> DiscreteGauss:
    return DiscreteGauss(make_models.gauss_mean(), make_models.GAUSS_S, ddpm_linear_alphas_cumprod(), prediction)


def discrete_meta(prediction: str, description: str, **process) -> str:
    meta = {"prediction": prediction,
            "process": {"type": "discrete",
                        "betas": {"schedule": "linear", "start": 1e-4, "end": 0.02, "steps": DDPM_STEPS},
                        **process},
            "sample_shape": SHAPE, "data_range": [-1.0, 1.0],
            "description": "Test fixture: " + description,
            "gauss_mu": make_models.gauss_mean().flatten().tolist(), "gauss_s": make_models.GAUSS_S}
    return json.dumps(meta)


def flow_t1000_meta() -> str:
    meta = make_models.make_meta("flow", "velocity", SHAPE, [-1.0, 1.0],
                                 "Test fixture: gauss flow/velocity taking t in [0, 1000]")
    meta["process"]["time_scale"] = 1000.0
    return json.dumps(meta)


# sigma_1 of the 3-step polynomial (rho 7) grid from 80 to 0.002: Euler at 3 NFE meets it, the
# 50- and 25-step grids do not (diffode's manifest of `euler`, `nfe: 3` on gauss.pt).
NAN_SIGMA = 9.723201355260132


def gauss_x0() -> torch.nn.Module:
    return make_models.gauss_module("edm", "x0")


def fixture_meta(description: str) -> str:
    """A valid diffode.json like gauss.pt's (edm / x0, [3, 8, 8])."""
    meta = make_models.make_meta("edm", "x0", SHAPE, [-1.0, 1.0], "Test fixture: " + description)
    return json.dumps(meta)


# name -> (module or None for a plain text file, diffode.json text or None, purpose)
def fixtures() -> dict:
    return {
        "no_forward.pt": (NoForward(), fixture_meta("forward(x) only"),
                          "forward takes only x (and an exported `features(x)`): calling "
                          "forward(x, t) is the wrong arity; the contract check must say so."),
        "wrong_shape.pt": (WrongShape(), fixture_meta("wrong output shape"),
                           "forward(x, t) returns x[:, :1] ([B,1,8,8] instead of [B,3,8,8])."),
        "wrong_dtype.pt": (WrongDtype(), fixture_meta("integer output"),
                           "forward(x, t) returns x as int64 (not a floating-point output)."),
        "nan_model.pt": (NanBelowOne(gauss_x0()), fixture_meta("NaN output for t < 1"),
                         "the gauss.pt denoiser (edm/x0), but NaN in every row with t < 1: the "
                         "probe at large sigma passes and sampling fails partway, once sigma < 1."),
        "nan_at_sigma.pt": (NanAt(gauss_x0(), NAN_SIGMA), fixture_meta("NaN output at one sigma"),
                            f"the gauss.pt denoiser (edm/x0), NaN only where t is within 1e-6 of "
                            f"{NAN_SIGMA} (sigma 1 of the 3-step polynomial grid): one cell of a "
                            "compare fails, the others and the reference do not."),
        "raises_model.pt": (RaisesBelowATenth(gauss_x0()), fixture_meta("raises for t < 0.1"),
                            "the gauss.pt denoiser (edm/x0) raising a RuntimeError once any t < 0.1: "
                            "the probe passes and sampling fails partway (exit 2, one line)."),
        "shape_off_probe.pt": (ShapeOffProbe(gauss_x0()), fixture_meta("wrong shape off the probe batch"),
                               "the gauss.pt denoiser (edm/x0), right for a batch of 2 (the probe) "
                               "and returning x[:, :1] for any other batch size."),
        "ddpm_gauss_eps.pt": (discrete_gauss("eps"), discrete_meta("eps", "discrete DDPM Gaussian, eps"),
                              "Gaussian data N(mu, 0.25 I) (mu as in gauss.pt) in the discrete DDPM "
                              "convention: linear betas 1e-4..0.02 over 1000 timesteps, eps-prediction, "
                              "called with a fractional timestep whose sigma is the log-sigma interpolation "
                              "of its own float64 table. Its ODE has a closed-form solution."),
        "ddpm_gauss_v.pt": (discrete_gauss("v"), discrete_meta("v", "discrete DDPM Gaussian, v"),
                            "ddpm_gauss_eps.pt's model with v-prediction (v = sqrt(abar) eps - "
                            "sqrt(1 - abar) x0)."),
        "ddpm_gauss_int_t.pt": (WholeTimestepsOnly(discrete_gauss("eps")),
                                discrete_meta("eps", "whole timesteps only", quantize=True),
                                "ddpm_gauss_eps.pt raising unless every t is a whole timestep; its "
                                "metadata sets quantize: true (without it sampling must fail)."),
        "flow_gauss_t1000.pt": (TimeScaled(make_models.gauss_module("flow", "velocity"), 1000.0),
                                flow_t1000_meta(),
                                "models/gauss/flow_velocity.pt's network taking t in [0, 1000] (it "
                                "divides by 1000 itself); metadata time_scale 1000."),
        "no_meta.pt": (gauss_x0(), None,
                       "the gauss.pt model (edm/x0, [3,8,8], mu/s as in gauss.pt) with no "
                       "diffode.json: the config must supply sample_shape, process, prediction."),
        "bad_meta.pt": (gauss_x0(), "{prediction: x0",
                        "the gauss.pt model with a diffode.json that is not valid JSON "
                        "(`{prediction: x0`)."),
        "not_a_model.pt": (None, "this is not a torchscript archive\n",
                           "a text file, not a TorchScript archive (loading must fail cleanly)."),
    }


def write_fixture(path: str, module, meta_text) -> None:
    if module is None:
        with open(path, "w") as f:
            f.write(meta_text)
    else:
        make_models.save_scripted(module, path, meta_text)


# --------------------------------------------------------------------------
# randn reference
# --------------------------------------------------------------------------

def randn_values(seed: int, shape: list) -> list:
    """torch.manual_seed(seed); torch.randn(shape), as Python floats (exact)."""
    torch.manual_seed(seed)
    values = torch.randn(shape)
    # The same numbers must come from a fresh generator (what diffode uses per sample).
    fresh = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(values, fresh)
    return [float(v) for v in values.flatten().tolist()]


def write_randn_reference(path: str) -> None:
    cases = [{"seed": seed, "shape": shape, "values": randn_values(seed, shape)}
             for seed in RANDN_SEEDS for shape in RANDN_SHAPES]
    doc = {"dtype": "float32", "torch_version": torch.__version__.split("a")[0], "cases": cases}
    with open(path, "w") as f:
        json.dump(doc, f)  # floats are written with repr: they read back exactly
        f.write("\n")
    check_randn_reference(path)


def check_randn_reference(path: str) -> None:
    with open(path) as f:
        doc = json.load(f)
    for case in doc["cases"]:
        back = torch.tensor(case["values"], dtype=torch.float64).to(torch.float32)
        torch.manual_seed(case["seed"])
        assert torch.equal(back, torch.randn(case["shape"]).flatten()), case["seed"]


# --------------------------------------------------------------------------
# Checks and README
# --------------------------------------------------------------------------

def check_fixtures(out_dir: str) -> None:
    """Each fixture fails (or not) the way it is meant to."""
    x = torch.randn([2] + SHAPE, generator=torch.Generator().manual_seed(0))
    big, small = torch.full([2], 2.0), torch.full([2], 0.05)
    load = lambda name, **kw: torch.jit.load(os.path.join(out_dir, name), **kw)  # noqa: E731
    try:
        load("no_forward.pt")(x, big)
        raise AssertionError("no_forward.pt accepted forward(x, t)")
    except RuntimeError:
        pass
    assert load("wrong_shape.pt")(x, big).shape != x.shape
    assert not load("wrong_dtype.pt")(x, big).is_floating_point()
    nan_model = load("nan_model.pt")
    assert torch.isfinite(nan_model(x, big)).all() and torch.isnan(nan_model(x, small)).all()
    raises = load("raises_model.pt")
    raises(x, big)
    try:
        raises(x, small)
        raise AssertionError("raises_model.pt did not raise")
    except torch.jit.Error:
        pass
    off = load("shape_off_probe.pt")
    assert off(x, big).shape == x.shape and off(torch.cat([x, x, x]), torch.full([6], 2.0)).shape[1] == 1
    nan_at = load("nan_at_sigma.pt")
    assert torch.isnan(nan_at(x, torch.full([2], NAN_SIGMA))).all() and torch.isfinite(nan_at(x, big)).all()
    abar = ddpm_linear_alphas_cumprod()
    assert abs(abar[-1].item() - 4.0358e-5) < 1e-8, abar[-1].item()  # as published: abar_999 ~ 4.0e-5
    eps_model, v_model = load("ddpm_gauss_eps.pt"), load("ddpm_gauss_v.pt")
    t_whole = torch.tensor([999.0, 10.0], dtype=torch.float64)
    xd = x.to(torch.float64)
    a, sg = abar[[999, 10]].sqrt()[:, None, None, None], (1 - abar[[999, 10]]).sqrt()[:, None, None, None]
    mu = make_models.gauss_mean()[None]
    s2 = make_models.GAUSS_S ** 2
    eps_exact = sg * (xd - a * mu) / (a * a * s2 + sg * sg)  # at whole timesteps: the table itself
    assert torch.allclose(eps_model(xd, t_whole), eps_exact, rtol=1e-9, atol=1e-12)
    x0_exact = mu + a * s2 * (xd - a * mu) / (a * a * s2 + sg * sg)
    assert torch.allclose(v_model(xd, t_whole), a * eps_exact - sg * x0_exact, rtol=1e-9, atol=1e-12)
    whole = load("ddpm_gauss_int_t.pt")
    whole(xd, t_whole)
    try:
        whole(xd, t_whole + 0.5)
        raise AssertionError("ddpm_gauss_int_t.pt accepted t = 999.5")
    except torch.jit.Error:
        pass
    flow = make_models.gauss_module("flow", "velocity")
    assert torch.equal(load("flow_gauss_t1000.pt")(x, torch.full([2], 500.0)), flow(x, torch.full([2], 0.5)))
    extra = {"diffode.json": ""}
    load("no_meta.pt", _extra_files=extra)
    assert not extra["diffode.json"]  # a missing extra file reads back empty
    load("bad_meta.pt", _extra_files=extra)
    try:
        json.loads(extra["diffode.json"])
        raise AssertionError("bad_meta.pt has valid JSON")
    except json.JSONDecodeError:
        pass
    try:
        load("not_a_model.pt")
        raise AssertionError("not_a_model.pt loaded")
    except RuntimeError:
        pass


def write_readme(out_dir: str, table: dict) -> None:
    lines = ["# Test fixtures", "",
             "Files the C++ tests read. All are made by one deterministic command:", "",
             "```", COMMAND, "```", "",
             "Models with a diffode.json carry a valid one like gauss.pt's (edm / x0, "
             "sample_shape [3, 8, 8], data_range [-1, 1], sigma 0.002..80) unless the point is "
             "the metadata itself.", "",
             "File | size | what it is for", "---|---|---",
             f"`randn_reference.json` | {os.path.getsize(os.path.join(out_dir, 'randn_reference.json'))} "
             f"| `torch.manual_seed(seed); torch.randn(shape)` (float32, CPU) for seeds {RANDN_SEEDS} and "
             f"shapes {RANDN_SHAPES}: `{{\"dtype\", \"torch_version\", \"cases\": [{{\"seed\", \"shape\", "
             "\"values\" (flat, C order, exact)}]}`. DESIGN.md 6: sample k's start noise must equal "
             "these numbers (a fresh CPU generator seeded with seed + k, float32 randn of the sample "
             "shape). Note that randn of 16+ elements uses a different (vectorised) path from "
             "smaller ones, and float64 randn gives different numbers: draw float32 per sample."]
    for name, (_, _, purpose) in table.items():
        lines.append(f"`{name}` | {os.path.getsize(os.path.join(out_dir, name))} | {purpose}")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(make_models.REPO, "tests", "data"),
                        help="output folder")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    write_randn_reference(os.path.join(args.out, "randn_reference.json"))
    table = fixtures()
    for name, (module, meta_text, _) in table.items():
        write_fixture(os.path.join(args.out, name), module, meta_text)
    check_fixtures(args.out)
    write_readme(args.out, table)
    for name in ["randn_reference.json"] + list(table) + ["README.md"]:
        print(f"{name:22s} {os.path.getsize(os.path.join(args.out, name)):8d} bytes")


if __name__ == "__main__":
    main()
