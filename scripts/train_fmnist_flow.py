"""Train a class-conditional flow-matching U-Net on Fashion-MNIST and export it for diffode.

Flow matching / rectified flow (DESIGN.md process "flow", prediction "velocity"):
    x_t = (1 - t) * x0 + t * eps,   target v = eps - x0,   t = 1 is pure noise.
Data in [-1, 1], shape [1, 28, 28]. Labels y in [0, 10); y = 10 is the null class,
used with probability --p-uncond (0.1) in training for classifier-free guidance.

Usage (run from anywhere; always /usr/bin/python3):
  train / resume   /usr/bin/python3 scripts/train_fmnist_flow.py --minutes 100
                   (re-running the same command resumes from --ckpt; --minutes is the
                   total training budget across all runs; when it is spent the script
                   exports models/fmnist_flow.pt and runs the checks)
  export only      /usr/bin/python3 scripts/train_fmnist_flow.py --export-only
  arch probe       /usr/bin/python3 scripts/train_fmnist_flow.py --probe m --probe-seconds 120
"""

import argparse
import json
import math
import os
import sys
import time
import zlib
import struct
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_data  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 10

# name -> (patch size, channels per resolution, residual blocks per level, attention at 7x7)
ARCHS = {
    "s": dict(patch=1, channels=[32, 64, 64], blocks=1, attn=False),   # 28/14/7
    "m": dict(patch=1, channels=[32, 64, 128], blocks=1, attn=True),   # 28/14/7
    "p": dict(patch=2, channels=[64, 128], blocks=2, attn=True),       # 2x2 patches: 14/7
}


# --------------------------------------------------------------------------- model

def group_norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, c)


class ResBlock(nn.Module):
    """GN-SiLU-conv, FiLM (scale/shift) from the time+class embedding, GN-SiLU-conv, skip."""

    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = group_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        if cin != cout:
            self.skip = nn.Conv2d(cin, cout, 1)
        else:
            self.skip = nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the spatial positions (used at 7x7)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = group_norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.scale = 1.0 / math.sqrt(c)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3 * c, h * w).chunk(3, dim=1)
        a = torch.softmax(torch.bmm(q.transpose(1, 2), k) * self.scale, dim=-1)  # [b, hw, hw]
        o = torch.bmm(v, a.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj(o)


class DownLevel(nn.Module):
    """Residual blocks at one resolution; returns (downsampled, skip)."""

    def __init__(self, cin: int, cout: int, blocks: int, emb_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList([ResBlock(cin if i == 0 else cout, cout, emb_dim) for i in range(blocks)])
        self.down = nn.Conv2d(cout, cout, 3, stride=2, padding=1)

    def forward(self, h: Tensor, emb: Tensor) -> Tuple[Tensor, Tensor]:
        for blk in self.blocks:
            h = blk(h, emb)
        return self.down(h), h


class UpLevel(nn.Module):
    """Nearest x2 + 3x3 conv (cin -> cout, the skip's width), concat skip, residual blocks."""

    def __init__(self, cin: int, cout: int, blocks: int, emb_dim: int):
        super().__init__()
        self.up = nn.Conv2d(cin, cout, 3, padding=1)
        self.blocks = nn.ModuleList([ResBlock(2 * cout if i == 0 else cout, cout, emb_dim) for i in range(blocks)])

    def forward(self, h: Tensor, skip: Tensor, emb: Tensor) -> Tensor:
        h = self.up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = torch.cat([h, skip], dim=1)
        for blk in self.blocks:
            h = blk(h, emb)
        return h


class FlowUNet(nn.Module):
    """U-Net for [1, 28, 28]. patch = 2 first folds 2x2 pixels into channels (pixel
    unshuffle, 4 x 14 x 14). channels[i] is the width at resolution (28/patch) / 2^i; the
    last entry is the middle stage (ResBlock, optional attention, ResBlock), which must
    be at 7x7. Output: velocity [B,1,28,28]; bottleneck feature = output of the middle
    stage, [B, channels[-1], 7, 7]."""

    def __init__(self, channels: List[int], blocks: int = 1, attn: bool = True, patch: int = 1,
                 num_classes: int = NUM_CLASSES, tdim: int = 64):
        super().__init__()
        assert (28 // patch) // 2 ** (len(channels) - 1) == 7
        emb_dim = 4 * channels[0]
        self.num_classes = num_classes
        self.tdim = tdim
        self.patch = patch
        self.time_mlp = nn.Sequential(nn.Linear(tdim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim)
        self.conv_in = nn.Conv2d(patch * patch, channels[0], 3, padding=1)
        self.down = nn.ModuleList([DownLevel(channels[i - 1] if i > 0 else channels[0], channels[i], blocks, emb_dim)
                                   for i in range(len(channels) - 1)])
        cm = channels[-1]
        self.mid1 = ResBlock(channels[-2], cm, emb_dim)
        self.mid_attn = Attention(cm) if attn else nn.Identity()
        self.mid2 = ResBlock(cm, cm, emb_dim)
        self.up = nn.ModuleList([UpLevel(channels[i + 1], channels[i], blocks, emb_dim)
                                 for i in reversed(range(len(channels) - 1))])
        self.norm_out = group_norm(channels[0])
        self.conv_out = nn.Conv2d(channels[0], patch * patch, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _embed(self, t: Tensor, y: Optional[Tensor], batch: int) -> Tensor:
        if t.dim() == 0:
            t = t.expand(batch)
        half = self.tdim // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device)
                          * (-math.log(10000.0) / half))
        arg = (t.to(torch.float32) * 1000.0)[:, None] * freqs[None, :]
        e = self.time_mlp(torch.cat([torch.cos(arg), torch.sin(arg)], dim=1))
        if y is None:
            yy = torch.full([batch], self.num_classes, dtype=torch.long, device=t.device)
        else:
            yy = y.to(torch.long)
        return e + self.class_emb(yy)

    def _run(self, x: Tensor, t: Tensor, y: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        emb = self._embed(t, y, x.shape[0])
        if self.patch > 1:
            x = F.pixel_unshuffle(x, self.patch)
        h = self.conv_in(x)
        skips: List[Tensor] = []
        for level in self.down:
            h, s = level(h, emb)
            skips.append(s)
        h = self.mid1(h, emb)
        h = self.mid_attn(h)
        h = self.mid2(h, emb)
        feat = h
        for level in self.up:
            h = level(h, skips.pop(), emb)
        out = self.conv_out(F.silu(self.norm_out(h)))
        if self.patch > 1:
            out = F.pixel_shuffle(out, self.patch)
        return out, feat

    def forward(self, x: Tensor, t: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self._run(x, t, y)[0]

    @torch.jit.export
    def forward_with_features(self, x: Tensor, t: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        return self._run(x, t, y)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------- training pieces

def sample_t(n: int, gen: Optional[torch.Generator] = None) -> Tensor:
    """90% logit-normal(0, 1) + 10% uniform(0, 1)."""
    t_ln = torch.sigmoid(torch.randn(n, generator=gen))
    t_u = torch.rand(n, generator=gen)
    pick = torch.rand(n, generator=gen) < 0.1
    return torch.where(pick, t_u, t_ln)


def flow_loss(model: nn.Module, x0: Tensor, y: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    tb = t[:, None, None, None]
    xt = (1.0 - tb) * x0 + tb * eps
    return F.mse_loss(model(xt, t, y), eps - x0)


class EvalSet:
    """Fixed held-out batch (first 512 test images, their labels, fixed noise, stratified
    uniform t): a loss comparable across runs and architectures."""

    def __init__(self, xte: np.ndarray, yte: np.ndarray, n: int = 512):
        g = torch.Generator().manual_seed(1234)
        self.x0 = torch.from_numpy(xte[:n].copy())
        self.y = torch.from_numpy(yte[:n].copy())
        self.eps = torch.randn(self.x0.shape, generator=g)
        self.t = (torch.arange(n, dtype=torch.float32) + torch.rand(n, generator=g)) / n

    @torch.no_grad()
    def loss(self, model: nn.Module) -> float:
        model.eval()
        tot = 0.0
        for i in range(0, self.x0.shape[0], 128):
            s = slice(i, i + 128)
            tot += float(flow_loss(model, self.x0[s], self.y[s], self.t[s], self.eps[s])) * self.x0[s].shape[0]
        model.train()
        return tot / self.x0.shape[0]


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, step: int, decay: float):
    d = min(decay, (1.0 + step) / (10.0 + step))
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(d).add_(pm.detach(), alpha=1.0 - d)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def lr_at(step: int, frac: float, args) -> float:
    """Linear warm-up over --warmup steps, constant, then linear decay to 10% over the
    last --decay-frac of the time budget (frac = fraction of the budget spent)."""
    lr = args.lr * min(1.0, (step + 1) / args.warmup)
    start = 1.0 - args.decay_frac
    if frac > start:
        lr *= 1.0 - 0.9 * min(1.0, (frac - start) / args.decay_frac)
    return lr


def arch_text(arch: str) -> str:
    a = ARCHS[arch]
    res = [28 // a["patch"] // 2 ** i for i in range(len(a["channels"]))]
    return ("%s%s channels %s at %s, %d res block(s) per level, %s7x7 bottleneck"
            % ("2x2 pixel-unshuffle, " if a["patch"] > 1 else "", "U-Net", a["channels"],
               "/".join(map(str, res)), a["blocks"], "self-attention at the " if a["attn"] else "no attention, "))


def build(arch: str) -> FlowUNet:
    return FlowUNet(**ARCHS[arch])


# --------------------------------------------------------------------------- probe

def probe(args):
    torch.manual_seed(args.seed)
    xtr, ytr = fmnist_data.load_split("train")
    xte, yte = fmnist_data.load_split("test")
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    ev = EvalSet(xte, yte)
    model = build(args.probe)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    print("probe arch %s %s params %d batch %d" % (args.probe, ARCHS[args.probe], count_params(model), args.batch), flush=True)
    t0 = time.time()
    train_time = 0.0
    step = 0
    while train_time < args.probe_seconds:
        ts = time.time()
        loss = train_step(model, opt, xtr_t, ytr_t, step, 0.0, args)
        train_time += time.time() - ts
        step += 1
        if step % 25 == 0:
            print("probe %s step %d train_s %.1f it/s %.3f loss %.4f eval %.4f"
                  % (args.probe, step, train_time, step / train_time, loss, ev.loss(model)), flush=True)
    print("probe %s done: %d steps in %.1f s train time (%.3f it/s), eval loss %.4f, wall %.1f s"
          % (args.probe, step, train_time, step / train_time, ev.loss(model), time.time() - t0), flush=True)


def train_step(model, opt, xtr_t, ytr_t, step, frac, args) -> float:
    idx = torch.randint(0, xtr_t.shape[0], (args.batch,))
    x0, y = xtr_t[idx], ytr_t[idx].clone()
    y[torch.rand(args.batch) < args.p_uncond] = NUM_CLASSES
    t = sample_t(args.batch)
    eps = torch.randn_like(x0)
    loss = flow_loss(model, x0, y, t, eps)
    for g in opt.param_groups:
        g["lr"] = lr_at(step, frac, args)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss)


# --------------------------------------------------------------------------- train

def save_ckpt(path, model, ema, opt, step, elapsed, loss_log, args):
    state = {
        "arch": args.arch, "model": model.state_dict(), "ema": ema.state_dict(),
        "opt": opt.state_dict(), "step": step, "elapsed": elapsed, "loss_log": loss_log,
        "torch_rng": torch.get_rng_state(), "args": vars(args),
    }
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(args):
    xtr, ytr = fmnist_data.load_split("train")
    xte, yte = fmnist_data.load_split("test")
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    ev = EvalSet(xte, yte)

    torch.manual_seed(args.seed)
    model = build(args.arch)
    ema = build(args.arch)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step, elapsed, loss_log = 0, 0.0, []
    if os.path.exists(args.ckpt):
        ck = torch.load(args.ckpt)
        if ck["arch"] != args.arch:
            raise SystemExit("checkpoint %s has arch %s, not %s" % (args.ckpt, ck["arch"], args.arch))
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, elapsed, loss_log = ck["step"], ck["elapsed"], ck["loss_log"]
        torch.set_rng_state(ck["torch_rng"])
        print("resumed from %s at step %d, %.1f min trained" % (args.ckpt, step, elapsed / 60), flush=True)
    else:
        print("fresh start, seed %d" % args.seed, flush=True)
    print("arch %s %s params %d batch %d lr %g threads %d budget %.1f min"
          % (args.arch, ARCHS[args.arch], count_params(model), args.batch, args.lr,
             torch.get_num_threads(), args.minutes), flush=True)

    budget = args.minutes * 60.0
    last_ckpt = time.time()
    win_loss, win_n, win_t = 0.0, 0, time.time()
    seg_start, seg_elapsed0 = time.time(), elapsed
    while elapsed < budget:
        loss = train_step(model, opt, xtr_t, ytr_t, step, elapsed / budget, args)
        if not math.isfinite(loss):
            raise SystemExit("non-finite loss at step %d" % step)
        ema_update(ema, model, step, args.ema)
        step += 1
        elapsed = seg_elapsed0 + (time.time() - seg_start)
        win_loss += loss
        win_n += 1
        if step % args.log_every == 0:
            now = time.time()
            msg = "step %d  %.1f min  %.3f it/s  loss %.4f  lr %.2e" % (
                step, elapsed / 60, win_n / (now - win_t), win_loss / win_n, lr_at(step, elapsed / budget, args))
            if step % args.eval_every == 0:
                el, em = ev.loss(model), ev.loss(ema)
                msg += "  eval %.4f  eval_ema %.4f" % (el, em)
                loss_log.append([step, round(elapsed, 1), win_loss / win_n, el, em])
            print(msg, flush=True)
            win_loss, win_n, win_t = 0.0, 0, time.time()
        if time.time() - last_ckpt > args.ckpt_minutes * 60:
            save_ckpt(args.ckpt, model, ema, opt, step, elapsed, loss_log, args)
            last_ckpt = time.time()
            print("checkpoint %s at step %d" % (args.ckpt, step), flush=True)
    el, em = ev.loss(model), ev.loss(ema)
    loss_log.append([step, round(elapsed, 1), None, el, em])
    save_ckpt(args.ckpt, model, ema, opt, step, elapsed, loss_log, args)
    print("budget spent: step %d, %.1f min, eval %.4f, eval_ema %.4f; checkpoint %s"
          % (step, elapsed / 60, el, em, args.ckpt), flush=True)


# --------------------------------------------------------------------------- export + checks

def write_png_gray(path: str, img: np.ndarray):
    """img: uint8 [H, W]. Minimal PNG writer (8-bit grayscale, zlib)."""
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


@torch.no_grad()
def euler_cfg(model, y: Tensor, scale: float, steps: int, gen: torch.Generator) -> Tensor:
    x = torch.randn(y.shape[0], 1, 28, 28, generator=gen)
    null = torch.full_like(y, NUM_CLASSES)
    ts = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        t = torch.full([y.shape[0]], float(ts[i]))
        vc, vu = model(x, t, y), model(x, t, null)
        v = vu + scale * (vc - vu)
        x = x - float(ts[i] - ts[i + 1]) * v
    return x


def export(args):
    ck = torch.load(args.ckpt)
    arch = ck["arch"]
    model = build(arch)
    model.load_state_dict(ck["ema"])
    model.eval()
    scripted = torch.jit.script(model)
    meta = {
        "prediction": "velocity",
        "process": {"type": "flow"},
        "sample_shape": [1, 28, 28],
        "data_range": [-1, 1],
        "sigma_min": 0,
        "sigma_max": "inf",
        "num_classes": NUM_CLASSES,
        "null_class": True,
        "description": (
            "Class-conditional flow-matching (rectified flow) U-Net on Fashion-MNIST, "
            "x_t = (1-t) x0 + t eps, output velocity eps - x0, t = 1 pure noise. Arch '%s' "
            "(%s), %d params, "
            "EMA weights after %d steps (batch %d, %.0f min on a 2-core CPU) by "
            "scripts/train_fmnist_flow.py. forward(x, t, y=None): y in [0,10), 10 or None = "
            "unconditional (CFG). forward_with_features also returns the 7x7 bottleneck."
            % (arch, arch_text(arch), count_params(model), ck["step"], ck["args"]["batch"], ck["elapsed"] / 60)),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    torch.jit.save(scripted, args.out, _extra_files={"diffode.json": json.dumps(meta)})
    size = os.path.getsize(args.out)
    print("wrote %s (%d bytes)" % (args.out, size), flush=True)
    assert size <= 20 * 1024 * 1024

    # ---- checks on the reloaded file
    extra = {"diffode.json": ""}
    m = torch.jit.load(args.out, _extra_files=extra)
    m.eval()
    assert json.loads(extra["diffode.json"])["process"]["type"] == "flow"
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4, 1, 28, 28, generator=g)
    y = torch.tensor([0, 3, 9, 10])
    with torch.no_grad():
        for tv in (1.0, 0.0, 0.5):
            t = torch.full([4], tv)
            for yy in (y, None):
                o = m(x, t, yy)
                o2, f = m.forward_with_features(x, t, yy)
                assert o.shape == (4, 1, 28, 28) and o.dtype == torch.float32, o.shape
                assert f.shape == (4, ARCHS[arch]["channels"][-1], 7, 7), f.shape
                assert torch.isfinite(o).all() and torch.isfinite(f).all()
                assert torch.equal(o, o2), "forward and forward_with_features differ"
        # None and explicit null class agree
        t = torch.full([4], 0.3)
        assert torch.equal(m(x, t, None), m(x, t, torch.full([4], 10)))
        # scripted matches eager
        assert torch.allclose(m(x, t, y), model(x, t, y), atol=1e-5)
    print("checks passed: shapes, finiteness at t=0/0.5/1, forward == forward_with_features[0]", flush=True)

    rows = 4
    yy = torch.arange(NUM_CLASSES).repeat(rows)
    xs = euler_cfg(m, yy, args.cfg, 50, torch.Generator().manual_seed(0))
    print("sample range [%.3f, %.3f]" % (float(xs.min()), float(xs.max())), flush=True)
    img = ((xs.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()[:, 0]
    pad, scale = 2, 3
    grid = np.zeros((rows * (28 + pad) + pad, NUM_CLASSES * (28 + pad) + pad), np.uint8)
    for k in range(img.shape[0]):
        r, c = divmod(k, NUM_CLASSES)
        grid[pad + r * (28 + pad):pad + r * (28 + pad) + 28, pad + c * (28 + pad):pad + c * (28 + pad) + 28] = img[k]
    grid = np.kron(grid, np.ones((scale, scale), np.uint8))
    write_png_gray(args.grid, grid)
    print("wrote %s (columns = classes %s; %d rows; Euler 50 steps, CFG %.1f)"
          % (args.grid, fmnist_data.CLASS_NAMES, rows, args.cfg), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="m", choices=sorted(ARCHS))
    p.add_argument("--minutes", type=float, default=100.0, help="total training budget (all runs)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--decay-frac", type=float, default=0.3)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--p-uncond", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt", default="/tmp/fmnist_flow_ckpt.pt")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--out", default=os.path.join(ROOT, "models", "fmnist_flow.pt"))
    p.add_argument("--grid", default="/tmp/fmnist_flow_python_grid.png")
    p.add_argument("--cfg", type=float, default=2.0, help="guidance scale of the check sampler")
    p.add_argument("--export-only", action="store_true")
    p.add_argument("--probe", choices=sorted(ARCHS), help="architecture probe: train from scratch for --probe-seconds, no checkpoint")
    p.add_argument("--probe-seconds", type=float, default=120.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    if args.probe:
        probe(args)
        return
    if not args.export_only:
        train(args)
    export(args)


if __name__ == "__main__":
    main()
