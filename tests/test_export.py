#!/usr/bin/python3
"""scripts/export_torchscript.py on small networks made here (no downloads): the exported
archive loads in diffode, computes what the network computes, and samples.

Run: /usr/bin/python3 tests/test_export.py PATH_TO_DIFFODE   (ctest runs it)
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch
from torch import Tensor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import export_torchscript as ex  # noqa: E402

DIFFODE = os.environ.get("DIFFODE", os.path.join(REPO, "build", "diffode"))


class Output:
    """Like diffusers' UNet2DOutput: the tensor in .sample."""

    def __init__(self, sample: Tensor):
        self.sample = sample


class TinyUNet(torch.nn.Module):
    """A diffusers-style network: forward(sample, timestep, class_labels=None, return_dict=True)."""

    def __init__(self, channels: int = 3, classes: int = 0):
        super().__init__()
        torch.manual_seed(3)
        self.conv_in = torch.nn.Conv2d(channels, 8, 3, padding=1)
        self.time = torch.nn.Linear(1, 8)
        self.label = torch.nn.Embedding(classes + 1, 8) if classes else None
        self.conv_out = torch.nn.Conv2d(8, channels, 3, padding=1)

    def forward(self, sample, timestep, class_labels=None, return_dict=True):
        emb = self.time(torch.log1p(timestep.float())[:, None])
        if self.label is not None:
            emb = emb + self.label(class_labels)
        h = torch.tanh(self.conv_in(sample) + emb[:, :, None, None])
        out = self.conv_out(h)
        return Output(out) if return_dict else (out,)


class ScriptableNet(torch.nn.Module):
    """A network that is scriptable as it is: forward(x, t, y)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.lin = torch.nn.Linear(2, 2)
        self.emb = torch.nn.Embedding(4, 2)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        if bool((t > 500).any()):  # data-dependent control flow: tracing would freeze one branch
            return torch.tanh(self.lin(x) + self.emb(y))
        return self.lin(x) * t[:, None] / 1000.0 + self.emb(y)


DDPM_CONFIG = {"_class_name": "DDPMScheduler", "beta_schedule": "linear", "beta_start": 0.0001,
               "beta_end": 0.02, "num_train_timesteps": 1000, "prediction_type": "epsilon",
               "timestep_spacing": "leading", "steps_offset": 1, "clip_sample": True}
SD_CONFIG = {"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
             "beta_end": 0.012, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
             "timestep_spacing": "trailing"}
FLOW_CONFIG = {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}


def run(*args):
    return subprocess.run([DIFFODE, *args], capture_output=True, text=True)


class ExportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def sample(self, model, schedule, solver="euler", steps=5, extra=None):
        cfg = {"model": {"path": model}, "solver": {"name": solver, "steps": steps}, "schedule": schedule,
               "sampling": {"num_samples": 3, "batch_size": 3}}
        cfg.update(extra or {})
        with open(self.path("c.json"), "w") as f:
            json.dump(cfg, f)
        return run("sample", "-c", self.path("c.json"), "-o", self.path("out"))

    def test_scheduler_configs_map_to_processes(self):
        meta = ex.metadata_from_scheduler(DDPM_CONFIG, [3, 8, 8])
        self.assertEqual(meta["prediction"], "eps")
        self.assertEqual(meta["process"], {"type": "discrete", "betas": {
            "schedule": "linear", "start": 0.0001, "end": 0.02, "steps": 1000}})
        self.assertEqual(ex.schedule_from_scheduler(DDPM_CONFIG), {"name": "leading", "offset": 1})
        sd = ex.metadata_from_scheduler(SD_CONFIG, [4, 8, 8])
        self.assertEqual(sd["prediction"], "v")
        self.assertEqual(sd["process"]["betas"]["schedule"], "scaled_linear")
        self.assertEqual(ex.schedule_from_scheduler(SD_CONFIG), {"name": "trailing"})
        flow = ex.metadata_from_scheduler(FLOW_CONFIG, [4, 8, 8])
        self.assertEqual(flow["process"], {"type": "flow", "shift": 3.0, "time_scale": 1000.0})
        self.assertEqual(flow["prediction"], "velocity")
        cos = ex.metadata_from_scheduler(dict(DDPM_CONFIG, beta_schedule="squaredcos_cap_v2"), [3, 8, 8])
        self.assertEqual(cos["process"]["betas"], {"schedule": "cosine", "steps": 1000})
        betas = ex.metadata_from_scheduler(dict(DDPM_CONFIG, trained_betas=[0.1, 0.2, 0.3]), [3, 8, 8])
        self.assertEqual(len(betas["process"]["alphas_cumprod"]), 3)
        self.assertAlmostEqual(betas["process"]["alphas_cumprod"][2], 0.9 * 0.8 * 0.7)
        with self.assertRaisesRegex(ex.ExportError, "use_dynamic_shifting"):
            ex.metadata_from_scheduler(dict(FLOW_CONFIG, use_dynamic_shifting=True), [4, 8, 8])
        with self.assertRaisesRegex(ex.ExportError, "rescale_betas_zero_snr is set"):
            ex.metadata_from_scheduler(dict(DDPM_CONFIG, rescale_betas_zero_snr=True), [3, 8, 8])
        wan = {"_class_name": "UniPCMultistepScheduler", "prediction_type": "flow_prediction",
               "use_flow_sigmas": True, "flow_shift": 5.0, "num_train_timesteps": 1000}
        self.assertEqual(ex.metadata_from_scheduler(wan, [4, 8, 8])["process"],
                         {"type": "flow", "shift": 5.0, "time_scale": 1000.0})
        with self.assertRaisesRegex(ex.ExportError, "flow_prediction without use_flow_sigmas"):
            ex.metadata_from_scheduler(dict(wan, use_flow_sigmas=False), [4, 8, 8])
        euler = {"_class_name": "EulerDiscreteScheduler", "beta_schedule": "scaled_linear"}
        self.assertEqual(ex.schedule_from_scheduler(euler), {"name": "linspace"})
        self.assertEqual(ex.schedule_from_scheduler(dict(euler, use_karras_sigmas=True)),
                         {"name": "polynomial", "rho": 7.0})
        with self.assertRaisesRegex(ex.ExportError, "beta_schedule 'sigmoid'"):
            ex.metadata_from_scheduler(dict(DDPM_CONFIG, beta_schedule="sigmoid"), [3, 8, 8])

    def test_traced_diffusers_style_unet_samples_in_diffode(self):
        net = TinyUNet()
        meta = ex.metadata_from_scheduler(DDPM_CONFIG, [3, 8, 8])
        out = self.path("ddpm.pt")
        report = ex.export(net, out, meta, call=lambda m, x, t: m(x, t, return_dict=False)[0], diffode=DIFFODE)
        self.assertIn("contract     ok", report)
        self.assertIn('"type":"discrete"', report)
        loaded = torch.jit.load(out)
        x = torch.randn(5, 3, 8, 8)  # another batch size than the trace's
        t = torch.tensor([0.0, 10.5, 250.0, 998.0, 999.0])
        torch.testing.assert_close(loaded(x, t), net(x, t, return_dict=False)[0])
        res = self.sample(out, ex.schedule_from_scheduler(DDPM_CONFIG))
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        with open(self.path("out/manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["run"]["schedule"]["sigmas"][-1], 0.0)

    def test_output_object_is_unwrapped_without_an_adapter(self):
        out = self.path("flow.pt")
        meta = ex.metadata_from_scheduler(FLOW_CONFIG, [3, 8, 8])
        ex.export(TinyUNet(), out, meta, diffode=DIFFODE)  # returns Output(...): .sample is taken
        res = self.sample(out, {"name": "time_uniform"}, solver="heun", steps=3)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_scripted_conditional_network_keeps_its_control_flow(self):
        net = ScriptableNet()
        meta = {"prediction": "x0", "process": {"type": "discrete", "betas": {"schedule": "linear"}},
                "sample_shape": [2], "data_range": [-3, 3], "num_classes": 3, "null_class": True}
        out = self.path("cond.pt")
        report = ex.export(net, out, meta, script=True, diffode=DIFFODE)
        self.assertIn("num_classes  3", report)
        loaded = torch.jit.load(out)
        x, y = torch.randn(4, 2), torch.tensor([0, 1, 2, 3])
        for t in (torch.full([4], 100.0), torch.full([4], 900.0)):
            torch.testing.assert_close(loaded(x, t, y), net(x, t, y))
        res = self.sample(out, {"name": "trailing"}, extra={"sampling": {
            "num_samples": 3, "batch_size": 3, "labels": "cycle", "guidance": 2.0}})
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_wrong_output_is_refused_before_writing(self):
        meta = ex.metadata_from_scheduler(DDPM_CONFIG, [3, 8, 8])
        out = self.path("bad.pt")
        with self.assertRaisesRegex(ex.ExportError, r"returned \(2, 1, 8, 8\)"):
            ex.export(TinyUNet(), out, meta, call=lambda m, x, t: m(x, t, return_dict=False)[0][:, :1])
        self.assertFalse(os.path.exists(out))
        with self.assertRaisesRegex(ex.ExportError, "'process' is missing"):
            ex.export(TinyUNet(), out, {"prediction": "eps", "sample_shape": [3, 8, 8]})

    def test_command_line_with_a_factory(self):
        with open(self.path("nets.py"), "w") as f:
            f.write("import sys\nsys.path.insert(0, %r)\nfrom test_export import TinyUNet\n"
                    "def build():\n    return TinyUNet()\n" % os.path.dirname(os.path.abspath(__file__)))
        with open(self.path("sched.json"), "w") as f:
            json.dump(FLOW_CONFIG, f)
        script = os.path.join(REPO, "scripts", "export_torchscript.py")
        args = [sys.executable, script, "--factory", "nets:build", "--scheduler-config", self.path("sched.json"),
                "--sample-shape", "3", "8", "8", "-o", self.path("cli.pt"), "--diffode", DIFFODE]
        res = subprocess.run(args, capture_output=True, text=True, cwd=self.dir.name)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn('schedule for the diffode config: {"name": "time_uniform"}', res.stdout)
        self.assertIn('"shift":3.0', res.stdout)
        no_shape = [a for a in args if a not in ("--sample-shape", "3", "8")]
        bad = subprocess.run(no_shape, capture_output=True, text=True, cwd=self.dir.name)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--scheduler-config needs --sample-shape", bad.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        DIFFODE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
