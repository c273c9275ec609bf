"""TracIn self-influence (Pruthi et al. 2020): sum over checkpoints of lr * ||grad of the item's loss||^2.

Two ways to get the gradient norm:
- ``layers="last"``: the closed form for the final linear layer under softmax cross-entropy,
  ``||p - y||^2 * (||h||^2 + 1)``; one forward pass per checkpoint, no backward pass.
- ``layers="all"`` or a list of parameter-name prefixes: per-item gradients with ``torch.func``
  (vmap over grad), squared norms summed over the chosen parameters.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from .train import Checkpoint, predict, softmax


def _validate(x: np.ndarray, y: np.ndarray, checkpoints: Sequence[Checkpoint]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y must have shape ({len(x)},), got {y.shape}")
    if not checkpoints:
        raise ValueError("at least one checkpoint is needed")
    return x, y


def last_layer_grad_norm2(logits: np.ndarray, feats: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``||dL/dW||^2 + ||dL/db||^2`` of the final linear layer for softmax cross-entropy, per item:
    ``||softmax(z) - onehot(y)||^2 * (||h||^2 + 1)``. Shapes: (N, K), (N, D), (N,) -> (N,)."""
    p = softmax(logits.astype(np.float64))
    p[np.arange(len(y)), y] -= 1.0
    return (p ** 2).sum(1) * ((feats.astype(np.float64) ** 2).sum(1) + 1.0)


def self_influence(model: nn.Module, checkpoints: Sequence[Checkpoint], x: np.ndarray, y: np.ndarray, *,
                   layers: str | Sequence[str] = "last", batch_size: int = 256,
                   progress: bool = False) -> np.ndarray:
    """TracIn self-influence ``(N,)`` of items ``x`` (N, C, H, W) with labels ``y`` (N,).

    ``model`` gives the architecture (its parameters are not changed); each checkpoint's state is
    loaded into a copy and weighted by the checkpoint's learning rate.
    """
    x, y = _validate(x, y, checkpoints)
    work = copy.deepcopy(model).eval()
    total = np.zeros(len(x), dtype=np.float64)
    iterator = checkpoints
    if progress:
        from tqdm import tqdm
        iterator = tqdm(checkpoints, desc="TracIn checkpoints", unit="ckpt", leave=False)
    for ckpt in iterator:
        work.load_state_dict(ckpt.state)
        if layers == "last":
            logits, feats = predict(work, x)
            total += ckpt.lr * last_layer_grad_norm2(logits, feats, y)
        else:
            total += ckpt.lr * per_item_grad_norm2(work, x, y, layers=layers, batch_size=batch_size)
    return total


def thin_checkpoints(checkpoints: Sequence[Checkpoint], *, keep: int = 4) -> list[Checkpoint]:
    """Every k-th checkpoint (ending with the last), each carrying the summed learning rate of the
    epochs it stands for, as TracIn does with checkpoints taken every few epochs."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    n = len(checkpoints)
    step = max(1, -(-n // keep))
    out = []
    for end in range(n - 1, -1, -step):
        span = checkpoints[max(0, end - step + 1):end + 1]
        out.append(Checkpoint(state=checkpoints[end].state, lr=float(sum(c.lr for c in span)),
                              epoch=checkpoints[end].epoch))
    return out[::-1]


def _select(names: Sequence[str], layers: str | Sequence[str]) -> list[str]:
    if layers == "all":
        return list(names)
    if isinstance(layers, str):
        layers = [layers]
    chosen = [n for n in names if any(n == p or n.startswith(p + ".") or n.startswith(p) for p in layers)]
    if not chosen:
        raise ValueError(f"no parameter matches {list(layers)}; parameters are: {', '.join(names)}")
    return chosen


def per_item_grad_norm2(model: nn.Module, x: np.ndarray, y: np.ndarray, *,
                        layers: str | Sequence[str] = "all", batch_size: int = 256) -> np.ndarray:
    """Squared norm ``(N,)`` of each item's loss gradient over the chosen parameters (torch.func).

    The model is evaluated in eval mode (batch-norm uses its running statistics), so an item's
    gradient does not depend on the other items of its batch.
    """
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    chosen = _select(list(params), layers)
    fixed = {k: v for k, v in params.items() if k not in chosen}
    wanted = {k: params[k] for k in chosen}

    def loss_one(w: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, ({**fixed, **w}, buffers), (xi[None],))
        return F.cross_entropy(out, yi[None])

    grads_of = vmap(grad(loss_one), in_dims=(None, 0, 0))
    out = np.empty(len(x), dtype=np.float64)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for i in range(0, len(x), batch_size):
        g = grads_of(wanted, xt[i:i + batch_size], yt[i:i + batch_size])
        out[i:i + batch_size] = sum(t.flatten(1).pow(2).sum(1) for t in g.values()).double().numpy()
    return out
