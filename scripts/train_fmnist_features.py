"""Train a small Fashion-MNIST CNN classifier and export it as the diffode feature model.

Writes
  models/fmnist_features.pt               TorchScript: forward(x) -> logits [B,10],
                                           features(x) -> [B,F] (penultimate layer)
  models/fmnist_features.test_stats.json  float64 mean / unbiased covariance of the
                                           features of all 10000 t10k test images

and prints the test accuracy and two reference Frechet distances to the test
statistics: 1000 test images (the first 100 of each class; the "floor") and
1000 train images (first 100 of each class).

Run:  /usr/bin/python3 scripts/train_fmnist_features.py [--epochs 5] [--threads 1]
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_data  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURE_DIM = 128


class FeatureNet(nn.Module):
    """conv32-pool-conv64-pool-conv128 (3x3, BatchNorm+ReLU), FC 6272->128 (SiLU) = features,
    FC 128->10 = logits. Input [B,1,28,28] in [-1,1]."""

    def __init__(self, feature_dim: int = FEATURE_DIM):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2),
            *block(32, 64), nn.MaxPool2d(2),
            *block(64, 128),
        )
        self.drop1 = nn.Dropout(0.3)
        self.fc1 = nn.Linear(128 * 7 * 7, feature_dim)
        self.drop2 = nn.Dropout(0.3)
        self.fc2 = nn.Linear(feature_dim, 10)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x).flatten(1)
        return F.silu(self.fc1(self.drop1(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop2(self.features(x)))


def batched(fn, x, batch=500):
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out.append(fn(torch.from_numpy(x[i:i + batch])))
    return torch.cat(out).numpy()


def stats(feat):
    f = np.asarray(feat, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1)


def sqrtm_psd(s):
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, s1, mu2, s2):
    """||mu1-mu2||^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)), with tr sqrtm(S1 S2) computed as the
    sum of square roots of the eigenvalues of the symmetric sqrt(S1) S2 sqrt(S1)."""
    r1 = sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(ev, 0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join(ROOT, "models", "fmnist_features.pt"))
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    xtr, ytr = fmnist_data.load_split("train")
    xte, yte = fmnist_data.load_split("test")
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)

    model = FeatureNet()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(xtr) // args.batch
    total = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15)

    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(xtr)))
        run_loss, run_n = 0.0, 0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            xb, yb = xtr_t[idx], ytr_t[idx]
            # light augmentation: random shift by up to 2 pixels (zero = background -1)
            if True:
                dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
                xb = torch.roll(F.pad(xb, (2, 2, 2, 2), value=-1.0), shifts=(dy, dx), dims=(2, 3))[:, :, 2:30, 2:30]
            loss = F.cross_entropy(model(xb), yb, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run_loss += loss.item() * len(idx)
            run_n += len(idx)
        model.eval()
        logits = batched(model, xte)
        acc = float((logits.argmax(1) == yte).mean())
        print("epoch %d  train loss %.4f  test acc %.4f  (%.0f s)"
              % (epoch + 1, run_loss / run_n, acc, time.time() - t0), flush=True)

    model.eval()
    scripted = torch.jit.script(model)
    meta = {
        "kind": "features",
        "feature_dim": FEATURE_DIM,
        "data_range": [-1, 1],
        "sample_shape": [1, 28, 28],
        "test_accuracy": acc,
        "description": ("Fashion-MNIST CNN classifier (conv32-pool-conv64-pool-conv128, 3x3 "
                        "BatchNorm+ReLU, FC 6272->%d SiLU, FC %d->10), trained %d epochs on the "
                        "train split by scripts/train_fmnist_features.py (seed %d). forward(x) -> "
                        "logits [B,10]; features(x) -> [B,%d] (penultimate SiLU activations). Input "
                        "[B,1,28,28] in [-1,1]. test_accuracy on the t10k split."
                        % (FEATURE_DIM, FEATURE_DIM, args.epochs, args.seed, FEATURE_DIM)),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    torch.jit.save(scripted, args.out, _extra_files={"diffode.json": json.dumps(meta)})
    with open(args.out, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    print("wrote %s (%d bytes, sha256 %s)" % (args.out, os.path.getsize(args.out), sha))

    # Everything below uses the reloaded file, exactly what diffode will load.
    extra = {"diffode.json": ""}
    loaded = torch.jit.load(args.out, _extra_files=extra)
    loaded.eval()
    assert json.loads(extra["diffode.json"])["feature_dim"] == FEATURE_DIM
    acc2 = float((batched(loaded, xte).argmax(1) == yte).mean())
    print("reloaded test accuracy %.4f" % acc2)
    assert acc2 == acc, (acc2, acc)

    fte = batched(loaded.features, xte)
    assert fte.shape == (10000, FEATURE_DIM) and np.isfinite(fte).all()
    mu, cov = stats(fte)
    stats_path = os.path.splitext(args.out)[0] + ".test_stats.json"
    doc = {
        "feature_model_sha256": sha,
        "feature_dim": FEATURE_DIM,
        "count": int(fte.shape[0]),
        "mean": [float(v) for v in mu],
        "cov": [[float(v) for v in row] for row in cov],
    }
    with open(stats_path, "w") as f:
        json.dump(doc, f)  # json writes floats with repr: exact round trip
        f.write("\n")
    back = json.load(open(stats_path))
    assert np.array_equal(np.array(back["mean"]), mu) and np.array_equal(np.array(back["cov"]), cov)
    print("wrote %s" % stats_path)

    idx_te = fmnist_data.first_per_class(yte, 100)
    fd_test = frechet_distance(*stats(fte[idx_te]), mu, cov)
    idx_tr = fmnist_data.first_per_class(ytr, 100)
    ftr = batched(loaded.features, xtr[idx_tr])
    fd_train = frechet_distance(*stats(ftr), mu, cov)
    fd_self = frechet_distance(mu, cov, mu, cov)
    print("FD(test stats, test stats) = %.6g  (numerical zero check)" % fd_self)
    print("FD floor: 1000 test images (first 100/class) vs full test stats = %.6f" % fd_test)
    print("FD: 1000 train images (first 100/class) vs full test stats = %.6f" % fd_train)


if __name__ == "__main__":
    main()
