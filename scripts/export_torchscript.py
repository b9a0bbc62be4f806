#!/usr/bin/python3
"""Export a PyTorch network as a diffode model: a TorchScript archive with forward(x, t[, y])
and the diffode.json metadata (DESIGN.md 5), checked with `diffode info`.

As a library (the usual way; see the README's recipes):

    import sys; sys.path.insert(0, "scripts")
    from export_torchscript import export, metadata_from_scheduler
    meta = metadata_from_scheduler(scheduler_config, sample_shape=[3, 32, 32])
    export(unet, "model.pt", meta, call=lambda net, x, t: net(x, t, return_dict=False)[0])

From the command line, for a network built by a Python function:

    scripts/export_torchscript.py --factory mypkg.nets:build --metadata meta.json -o model.pt
    scripts/export_torchscript.py --factory mypkg.nets:build \\
        --scheduler-config scheduler_config.json --sample-shape 4 64 64 -o model.pt

`call(net, x, t[, y])` adapts the network's own signature (keyword arguments, outputs in a
tuple or an object with `.sample`); t is the model time of the process (a float tensor [B]:
a timestep index for "discrete", scaled by time_scale), y the int64 class [B]. The wrapper is
traced by default (works for any network whose control flow does not depend on its inputs);
--script scripts it instead (the network and call must then be TorchScript-compatible).
Nothing is downloaded; loading weights is up to the factory or the caller.
"""
import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor

# diffusers' scheduler names -> diffode's (DESIGN.md 2)
BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear", "squaredcos_cap_v2": "cosine"}
PREDICTIONS = {"epsilon": "eps", "v_prediction": "v", "sample": "x0", "flow_prediction": "velocity"}


class ExportError(Exception):
    """Bad input to the export: the message says what and where."""


def _first_tensor(out):
    """The output tensor of a network that returns a tuple, a list or an object with .sample."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if hasattr(out, "sample") and not isinstance(out, Tensor):
        out = out.sample
    return out


class Unconditional(torch.nn.Module):
    def __init__(self, net: torch.nn.Module, call: Optional[Callable]):
        super().__init__()
        self.net = net
        self.call = call

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.call(self.net, x, t) if self.call is not None else self.net(x, t)
        return _first_tensor(out)


class Conditional(torch.nn.Module):
    def __init__(self, net: torch.nn.Module, call: Optional[Callable]):
        super().__init__()
        self.net = net
        self.call = call

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        out = self.call(self.net, x, t, y) if self.call is not None else self.net(x, t, y)
        return _first_tensor(out)


def metadata_from_scheduler(config: Dict, sample_shape: List[int], num_classes: int = 0,
                            null_class: bool = False, description: str = "") -> Dict:
    """diffode.json from a diffusers scheduler config (scheduler_config.json as a dict).

    DDPM/DDIM/Euler-style configs (beta_schedule, beta_start, beta_end, num_train_timesteps or
    trained_betas, prediction_type) give a "discrete" process; FlowMatchEulerDiscreteScheduler
    configs a "flow" process with its shift and time_scale = num_train_timesteps. Sampling
    choices (timestep_spacing, steps_offset) belong in the diffode config: see
    schedule_from_scheduler().
    """
    meta = {"sample_shape": list(sample_shape), "num_classes": num_classes, "null_class": null_class,
            "description": description or "exported by scripts/export_torchscript.py"}
    steps = int(config.get("num_train_timesteps", 1000))
    for key in ("rescale_betas_zero_snr", "shift_terminal", "invert_sigmas", "use_exponential_sigmas",
                "use_beta_sigmas"):
        if config.get(key):
            raise ExportError(f"scheduler config: {key} is set; diffode has no such process or grid (a zero-SNR "
                              "table has alpha-bar 0 at its last timestep, outside a discrete process's (0, 1))")
    if _is_flow(config):
        if config.get("use_dynamic_shifting"):
            raise ExportError("scheduler config: use_dynamic_shifting is true (the shift depends on the "
                              "image size); compute the shift for your size and set it in the config "
                              "as \"shift\" with use_dynamic_shifting false")
        shift = config.get("flow_shift", 1.0) if config.get("use_flow_sigmas") else config.get("shift", 1.0)
        meta["prediction"] = "velocity"
        meta["process"] = {"type": "flow", "shift": float(shift), "time_scale": float(steps)}
        meta["sigma_min"] = 0.0
        meta["sigma_max"] = "inf"
        return meta
    kind = config.get("prediction_type", "epsilon")
    if kind == "flow_prediction":
        raise ExportError("scheduler config: prediction_type flow_prediction without use_flow_sigmas: "
                          "diffode reads flow models from FlowMatch configs or use_flow_sigmas with flow_shift")
    if kind not in PREDICTIONS:
        raise ExportError(f"scheduler config: prediction_type {kind!r} is not one of {sorted(PREDICTIONS)}")
    meta["prediction"] = PREDICTIONS[kind]
    process = {"type": "discrete"}
    if config.get("trained_betas") is not None:
        alphas, prod = [], 1.0
        for b in config["trained_betas"]:
            prod *= 1.0 - float(b)
            alphas.append(prod)
        process["alphas_cumprod"] = alphas
    else:
        name = config.get("beta_schedule", "linear")
        if name not in BETA_SCHEDULES:
            raise ExportError(f"scheduler config: beta_schedule {name!r} is not one of {sorted(BETA_SCHEDULES)}")
        betas = {"schedule": BETA_SCHEDULES[name], "steps": steps}
        if betas["schedule"] != "cosine":
            betas["start"] = float(config.get("beta_start", 0.0001))
            betas["end"] = float(config.get("beta_end", 0.02))
        process["betas"] = betas
    meta["process"] = process
    return meta


def _is_flow(config: Dict) -> bool:
    return ("FlowMatch" in str(config.get("_class_name", "")) or "shift" in config
            or bool(config.get("use_flow_sigmas")))


# Schedulers whose timestep_spacing defaults to "linspace" (the others': "leading").
LINSPACE_DEFAULT = ("EulerDiscrete", "EulerAncestralDiscrete", "HeunDiscrete", "LMSDiscrete", "KDPM2Discrete",
                    "KDPM2AncestralDiscrete")


def schedule_from_scheduler(config: Dict) -> Dict:
    """The diffode `schedule` section closest to a diffusers config's sigmas.

    FlowMatch: time_uniform (uniform in t, shifted; diffusers spaces t from 1 to shift(1/T)
    and ends at 0, so its first steps differ slightly). use_karras_sigmas: polynomial, rho 7.
    Else the timestep_spacing; diffode's linspace rounds to whole timesteps as DDIM/DDPM/PNDM
    do, where Euler-type schedulers call the network up to half a timestep away.
    """
    if _is_flow(config):
        return {"name": "time_uniform"}
    if config.get("use_karras_sigmas"):
        return {"name": "polynomial", "rho": 7.0}
    name = str(config.get("_class_name", "")).replace("Scheduler", "")
    spacing = config.get("timestep_spacing", "linspace" if name in LINSPACE_DEFAULT else "leading")
    if spacing == "leading":
        return {"name": "leading", "offset": int(config.get("steps_offset", 0))}
    if spacing in ("linspace", "trailing"):
        return {"name": spacing}
    raise ExportError(f"scheduler config: timestep_spacing {spacing!r} is not leading, linspace or trailing")


def _probe_time(meta: Dict) -> float:
    """A mid-range model time for the example inputs (network time: scaled, as diffode calls it)."""
    process = meta["process"]
    kind = process.get("type")
    scale = float(process.get("time_scale", 1.0))
    if kind == "discrete":
        steps = len(process["alphas_cumprod"]) if "alphas_cumprod" in process else process["betas"].get("steps", 1000)
        return float(steps // 2) * scale
    if kind == "edm":
        return 1.0 * scale
    return 0.5 * scale


def _find_diffode(given: Optional[str]) -> Optional[str]:
    if given:
        return given
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "diffode")
    if os.path.exists(here):
        return here
    return shutil.which("diffode")


def export(net: torch.nn.Module, path: str, meta: Dict, call: Optional[Callable] = None,
           script: bool = False, diffode: Optional[str] = None, check: bool = True) -> str:
    """Wraps `net` as forward(x, t[, y]), saves it with `meta` as diffode.json at `path`
    (written to path + ".tmp" first, renamed when complete) and returns `diffode info`'s
    report (empty when check is False or no diffode binary is found)."""
    for key in ("prediction", "process", "sample_shape"):
        if key not in meta:
            raise ExportError(f"metadata: {key!r} is missing (DESIGN.md 5 requires prediction, process, sample_shape)")
    conditional = int(meta.get("num_classes", 0)) > 0
    net = net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    wrapper = Conditional(net, call) if conditional else Unconditional(net, call)
    x = torch.randn([2] + list(meta["sample_shape"]), generator=torch.Generator().manual_seed(0))
    t = torch.full([2], _probe_time(meta))
    inputs = (x, t, torch.zeros(2, dtype=torch.int64)) if conditional else (x, t)
    with torch.no_grad():
        out = wrapper(*inputs)
        if not isinstance(out, Tensor) or out.shape != x.shape or not out.is_floating_point():
            got = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
            raise ExportError(f"the network returned {got} for x of shape {tuple(x.shape)}: diffode needs "
                              "a floating tensor of x's shape (adapt the output with call=...)")
        if script:
            if call is not None:
                raise ExportError("script=True takes no call adapter (a Python callable cannot be scripted); "
                                  "write forward(x, t[, y]) on the module itself, or trace")
            module = torch.jit.script(net)
        else:
            module = torch.jit.trace(wrapper, inputs, check_trace=False)
        again = module(*inputs)
        if not torch.allclose(again, out, rtol=1e-4, atol=1e-5):
            raise ExportError("the exported module's output differs from the network's on the same inputs "
                              "(data-dependent control flow under tracing?): try script=True")
    tmp = path + ".tmp"
    torch.jit.save(module, tmp, _extra_files={"diffode.json": json.dumps(meta)})
    os.replace(tmp, path)
    binary = _find_diffode(diffode) if check else None
    if binary is None:
        return ""
    res = subprocess.run([binary, "info", path], capture_output=True, text=True)
    if res.returncode != 0:
        raise ExportError(f"diffode info {path} failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    return res.stdout


def _load_factory(spec: str) -> torch.nn.Module:
    if ":" not in spec:
        raise ExportError(f"--factory {spec!r}: expected MODULE:FUNCTION (e.g. mypkg.nets:build)")
    mod_name, fn_name = spec.split(":", 1)
    sys.path.insert(0, os.getcwd())
    fn = getattr(importlib.import_module(mod_name), fn_name)
    net = fn()
    if not isinstance(net, torch.nn.Module):
        raise ExportError(f"--factory {spec}: returned {type(net).__name__}, not a torch.nn.Module")
    return net


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factory", required=True, help="MODULE:FUNCTION returning the nn.Module (weights loaded)")
    parser.add_argument("-o", "--output", required=True, help="the .pt file to write")
    parser.add_argument("--metadata", help="a diffode.json to embed")
    parser.add_argument("--scheduler-config", help="a diffusers scheduler_config.json to derive it from")
    parser.add_argument("--sample-shape", type=int, nargs="+", help="with --scheduler-config: one sample's shape")
    parser.add_argument("--num-classes", type=int, default=0)
    parser.add_argument("--null-class", action="store_true")
    parser.add_argument("--script", action="store_true", help="torch.jit.script instead of trace")
    parser.add_argument("--diffode", help="the diffode binary for the check (default: build/diffode, PATH)")
    args = parser.parse_args(argv)
    try:
        if (args.metadata is None) == (args.scheduler_config is None):
            raise ExportError("give exactly one of --metadata and --scheduler-config")
        if args.metadata:
            with open(args.metadata) as f:
                meta = json.load(f)
        else:
            if not args.sample_shape:
                raise ExportError("--scheduler-config needs --sample-shape")
            with open(args.scheduler_config) as f:
                sched = json.load(f)
            meta = metadata_from_scheduler(sched, args.sample_shape, args.num_classes, args.null_class)
            print("schedule for the diffode config:", json.dumps(schedule_from_scheduler(sched)))
        report = export(_load_factory(args.factory), args.output, meta, script=args.script, diffode=args.diffode)
        print(report or f"wrote {args.output} (no diffode binary found to check it)")
        return 0
    except (ExportError, OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
