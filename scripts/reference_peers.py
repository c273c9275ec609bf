"""The benchmark's independent reference model and the peers computed from it.

The reference is a plain small CNN with a fixed recipe, independent of the project's own model
and training (``RECIPE``): ``Conv(16,5)-pool-Conv(32,5)-pool-FC64``, SGD lr 0.05 momentum 0.9,
batch 64, 8 epochs, no augmentation, no schedule, no weight decay. Its training wall time is the
benchmark's cost unit. Peers (suspiciousness scores, higher = inspected first):

- "ref-loss": the trained model's cross-entropy on each item;
- "ref-tracin": TracIn self-influence of the last layer over the checkpoints of every other epoch;
- "ref-aum": minus the area under the margin (Pleiss et al. 2020): the assigned label's logit
  minus the largest other logit, at each epoch's training forward pass, averaged over epochs;
- "ref-cleanlab": cleanlab's label-quality score (its default, self-confidence) on 5-fold
  out-of-fold probabilities of the same recipe;
- "ref-ood": cleanlab's ``OutOfDistribution`` score on the trained model's penultimate features.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.tracin import last_layer_grad_norm2  # noqa: E402
from detection.train import cross_entropy, predict, softmax  # noqa: E402

PEERS = ("ref-loss", "ref-tracin", "ref-aum", "ref-cleanlab", "ref-ood")


@dataclass(frozen=True)
class Recipe:
    epochs: int = 8
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 64
    folds: int = 5            # cleanlab's out-of-fold probabilities
    tracin_every: int = 2     # TracIn checkpoints: every other epoch


RECIPE = Recipe()


class ReferenceCNN(nn.Module):
    """Conv(16,5)-ReLU-pool-Conv(32,5)-ReLU-pool-FC64-ReLU, then a linear head (no padding)."""

    def __init__(self, num_classes: int, *, in_channels: int = 1, size: int = 28):
        super().__init__()
        side = ((size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"images of side {size} are too small for the reference CNN (at least 16)")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * side * side, 64), nn.ReLU())
        self.head = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class ReferenceRun:
    """A trained reference model. margins (N, epochs): each item's margin at its training forward
    pass in each epoch; tracin (N,): last-layer self-influence summed over checkpoints; seconds:
    wall time of the training loop alone (the cost unit); tracin_seconds: the checkpoints' scoring."""

    model: nn.Module
    margins: np.ndarray
    tracin: np.ndarray
    seconds: float
    tracin_seconds: float = 0.0


def _margins(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    own = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf")).max(1).values
    return (own - other).detach().numpy()


def train_reference(x: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int = 0,
                    recipe: Recipe = RECIPE, tracin: bool = True, channels_last: bool = False) -> ReferenceRun:
    """Train the reference CNN on ``x`` (N, C, S, S) float32 and ``y`` (N,) with ``recipe``.
    ``channels_last``: its weights in channels-last memory layout, as the project's own models
    have them (the same recipe and results to float rounding; faster on CPUs); the peers use the
    plain layout, a user's default."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 4 or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"x (N, C, S, S) and y (N,) must match and be non-empty, got {x.shape} and {y.shape}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ReferenceCNN(num_classes, in_channels=x.shape[1], size=x.shape[2])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    margins = np.zeros((len(x), recipe.epochs), dtype=np.float32)
    influence = np.zeros(len(x), dtype=np.float64)
    seconds = tracin_seconds = 0.0
    for epoch in range(recipe.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), recipe.batch_size):
            idx = perm[i:i + recipe.batch_size]
            logits = model(xt[idx])
            loss = F.cross_entropy(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            margins[idx.numpy(), epoch] = _margins(logits, yt[idx])
        seconds += time.perf_counter() - t0
        if tracin and (epoch + 1) % recipe.tracin_every == 0:
            t0 = time.perf_counter()
            logits, feats = predict(model, x)
            influence += recipe.lr * recipe.tracin_every * last_layer_grad_norm2(logits, feats, y)
            tracin_seconds += time.perf_counter() - t0
    model.eval()
    return ReferenceRun(model=model, margins=margins, tracin=influence, seconds=seconds,
                        tracin_seconds=tracin_seconds)


@dataclass
class PeerScores:
    """scores: peer name -> (N,) suspiciousness; seconds: peer name -> wall time including the
    reference training it needs; reference_seconds: one reference training (the cost unit);
    channels_last_seconds: the same training with channels-last weights (a second cost unit,
    0 when not measured)."""

    scores: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    reference_seconds: float = 0.0
    channels_last_seconds: float = 0.0


def out_of_fold_probs(x: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int = 0,
                      recipe: Recipe = RECIPE) -> np.ndarray:
    """Probabilities ``(N, K)`` of each item from a reference model trained without its fold."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=num_classes)
    folds = int(min(recipe.folds, counts[counts > 0].min())) if counts.any() else recipe.folds
    if folds < 2:
        raise ValueError("out-of-fold probabilities need at least 2 items in every class present")
    probs = np.zeros((len(y), num_classes))
    for k, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)):
        run = train_reference(x[tr], y[tr], num_classes=num_classes, seed=seed + 1 + k, recipe=recipe, tracin=False)
        probs[te] = softmax(predict(run.model, x[te])[0])
    return probs


def reference_peers(x: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int = 0,
                    recipe: Recipe = RECIPE, cleanlab: bool = True, channels_last: bool = False) -> PeerScores:
    """Every peer of ``PEERS`` on ``x`` (N, C, S, S), ``y`` (N,); "ref-cleanlab" only when
    ``cleanlab`` (it costs ``recipe.folds`` more trainings); with ``channels_last``, one more
    reference training, with channels-last weights, timed only (``channels_last_seconds``)."""
    from cleanlab.outlier import OutOfDistribution
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(y, dtype=np.int64)
    run = train_reference(x, y, num_classes=num_classes, seed=seed, recipe=recipe)
    out = PeerScores(reference_seconds=run.seconds)
    if channels_last:
        out.channels_last_seconds = train_reference(x, y, num_classes=num_classes, seed=seed, recipe=recipe,
                                                    tracin=False, channels_last=True).seconds
    t0 = time.perf_counter()
    logits, feats = predict(run.model, x)
    forward = time.perf_counter() - t0
    out.scores["ref-loss"] = cross_entropy(softmax(logits.astype(np.float64)), y)
    out.seconds["ref-loss"] = run.seconds + forward
    out.scores["ref-tracin"] = run.tracin
    out.seconds["ref-tracin"] = run.seconds + run.tracin_seconds
    out.scores["ref-aum"] = -run.margins.mean(1).astype(np.float64)
    out.seconds["ref-aum"] = run.seconds
    t0 = time.perf_counter()
    out.scores["ref-ood"] = 1.0 - OutOfDistribution().fit_score(features=feats.astype(np.float64), verbose=False)
    out.seconds["ref-ood"] = run.seconds + forward + time.perf_counter() - t0
    if cleanlab:
        t0 = time.perf_counter()
        probs = out_of_fold_probs(x, y, num_classes=num_classes, seed=seed, recipe=recipe)
        out.scores["ref-cleanlab"] = 1.0 - get_label_quality_scores(y, probs)
        out.seconds["ref-cleanlab"] = time.perf_counter() - t0
    return out
