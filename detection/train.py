"""Training with checkpoints that remember their learning rate, and batched inference.

``train_model`` also records, for every item, what happened to it while it was trained on: its
loss at each visit (before the update) and the TracIn-ideal last-layer term ``lr * ||p - y||^2 *
(||h||^2 + 1)`` at that visit. Both come from the forward pass training does anyway, so they cost
nothing extra.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import DEVICES
from .models import build_model


@dataclass
class Checkpoint:
    """Model parameters after an epoch and the mean learning rate used during that epoch."""

    state: dict
    lr: float
    epoch: int


@dataclass
class TrainResult:
    """A trained model, its per-epoch checkpoints and what training saw of each item.

    visit_loss : float32 (N, epochs), cross-entropy of each item at its visit in each epoch
    visit_tracin : float64 (N,), sum over visits of lr * ||p - y||^2 * (||h||^2 + 1)
    visit_margin : float32 (N, epochs), the label's logit minus the largest other logit at each
        item's visit in each epoch; its mean over epochs is the area under the margin (AUM,
        Pleiss et al. 2020)
    """

    model: nn.Module
    checkpoints: list[Checkpoint] = field(default_factory=list)
    visit_loss: np.ndarray | None = None
    visit_tracin: np.ndarray | None = None
    visit_margin: np.ndarray | None = None
    seconds: float = 0.0


def _check_xy(x: np.ndarray, y: np.ndarray, num_classes: int) -> None:
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y must have shape ({len(x)},), got {y.shape}")
    if len(x) == 0:
        raise ValueError("no training items")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")


def _augment(xb: torch.Tensor, gen: torch.Generator, *, shift: int = 2, flip: bool = False) -> torch.Tensor:
    """Random translation by up to ``shift`` pixels per item (zero padding), optional h-flip."""
    b, c, h, w = xb.shape
    padded = F.pad(xb, (shift, shift, shift, shift))
    oy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]          # (B, H, 1)
    cols = (ox[:, None] + torch.arange(w))[:, None, :]          # (B, 1, W)
    out = padded[torch.arange(b)[:, None, None], :, rows, cols]  # (B, H, W, C)
    out = out.permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(b, generator=gen) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out.contiguous()


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; ``"cpu"``; ``"cuda"`` (a clear
    ``ValueError`` when there is no GPU)."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU (use 'auto' or 'cpu')")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def import_lazy_modules() -> None:
    """Import now what a process's first training would import on the way.

    torch.optim's first optimizer imports ``torch._dynamo`` (about 870 modules: sympy, triton,
    inductor; 2-4 s on 2 cores, most of it holding the GIL). A server calls this before it serves,
    so that its first training does not hold up the request threads (the backend's ``/health``)
    for those seconds.
    """
    torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)


def train_model(x: np.ndarray, y: np.ndarray, *, num_classes: int, epochs: int = 8,
                batch_size: int | None = None, lr: float = 0.05, weight_decay: float = 5e-4,
                seed: int = 0, augment: bool = True, model: nn.Module | None = None,
                warmup: bool = True, progress: bool = False, desc: str = "training",
                device: str = "cpu") -> TrainResult:
    """Train a classifier on ``x`` (N, C, H, W) float32 and ``y`` (N,) int with SGD + momentum and a
    warm-up/cosine schedule; keep one checkpoint per epoch with its mean learning rate.

    ``model`` (optional) is trained in place (fine-tuning); otherwise ``build_model`` makes one.
    ``batch_size`` defaults to 128, smaller for small sets (N // 20, at least 16) so that a few
    hundred items still get enough optimizer steps. ``device`` ("cpu", "cuda" or "auto", see
    ``resolve_device``) is where the optimizer steps run; the model comes back on the CPU and
    checkpoints are kept there, so everything after training is the same on either device.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    _check_xy(x, y, num_classes)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = resolve_device(device)
    if model is None:
        model = build_model(x.shape[1:], num_classes)
    model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    n = len(x)
    if batch_size is None:
        batch_size = int(min(128, max(16, n // 20)))
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    warm = max(1, total // 10) if warmup else 0

    def lr_at(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    visit_loss = np.zeros((n, epochs), dtype=np.float32)
    visit_tracin = np.zeros(n, dtype=np.float64)
    visit_margin = np.zeros((n, epochs), dtype=np.float32)
    checkpoints: list[Checkpoint] = []
    flip = x.shape[1] == 3
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc=desc, unit="batch", leave=False)
    step = 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        lrs = []
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            xb = xt[idx]
            if augment:
                xb = _augment(xb, gen, flip=flip)
            xb, yb = xb.to(dev), yt[idx].to(dev)
            cur = lr_at(step)
            for g in opt.param_groups:
                g["lr"] = cur
            h = model.features(xb)
            logits = model.head(h)
            losses = F.cross_entropy(logits, yb, reduction="none")
            opt.zero_grad(set_to_none=True)
            losses.mean().backward()
            opt.step()
            with torch.no_grad():
                p = torch.softmax(logits, 1)
                p[torch.arange(len(yb)), yb] -= 1.0
                term = p.pow(2).sum(1) * (h.pow(2).sum(1) + 1.0)
                rows = torch.arange(len(yb), device=logits.device)
                others = logits.detach().clone()
                others[rows, yb] = -torch.inf
                margin = logits.detach()[rows, yb] - others.max(1).values
            nidx = idx.numpy()
            visit_loss[nidx, epoch] = losses.detach().cpu().numpy()
            visit_tracin[nidx] += cur * term.cpu().numpy()
            visit_margin[nidx, epoch] = margin.cpu().numpy()
            lrs.append(cur)
            step += 1
            if bar is not None:
                bar.update(1)
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        checkpoints.append(Checkpoint(state=state, lr=float(np.mean(lrs)), epoch=epoch))
    if bar is not None:
        bar.close()
    model.to("cpu").eval()
    return TrainResult(model=model, checkpoints=checkpoints, visit_loss=visit_loss,
                       visit_tracin=visit_tracin, visit_margin=visit_margin, seconds=time.perf_counter() - start)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, *, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``(N, K)`` and penultimate features ``(N, D)`` (float32) of ``model`` on ``x``."""
    model.eval()
    logits, feats = [], []
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    for i in range(0, len(xt), batch_size):
        h = model.features(xt[i:i + batch_size])
        feats.append(h.numpy())
        logits.append(model.head(h).numpy())
    return np.concatenate(logits), np.concatenate(feats)


SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def predict_shifted(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Softmax probabilities ``(4, N, K)`` of ``model`` on ``x`` (N, C, H, W) moved by one pixel
    up, down, left and right (zero fill), the translations training augments with."""
    x = np.asarray(x, dtype=np.float32)
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return np.stack([softmax(predict(model, padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w])[0])
                     for dy, dx in SHIFTS]).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits, computed stably."""
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-item cross-entropy ``(N,)`` of probabilities ``(N, K)`` against labels ``(N,)``."""
    return -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))
