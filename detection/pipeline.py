"""The public entry point: fit a suspiciousness ranker on a labeled image set, learn from verdicts.

    >>> ranker = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0)
    >>> ranker.scores            # (N,) float64 in [0, 1], higher = more likely a wrong label
    >>> ranker.update([3, 17], [True, False])   # reviewer verdicts -> new scores for everyone
    >>> ranker.save("model_dir"); SuspicionRanker.load("model_dir")

Methods: "dfaulo" (views, mutants, meta-ranker that learns from verdicts), "tracin" (last-layer
self-influence over checkpoints) and "loss" (the trained model's loss). The last two do not learn
from verdicts; their scores are percentile ranks, so they lie in [0, 1] like DFauLo's.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import joblib
import numpy as np
import torch

from . import METHODS
from .dfaulo import DFauLoModels, build_features, compute_outputs, fit_dfaulo, synthetic_noise_inputs
from .signals import VOTE_CORES, fit_mixture, fit_noise_transition, ranker_inputs, vote_reference
from .ranker import INITIAL_RANKERS, MetaRanker
from .tracin import thin_checkpoints
from .train import Checkpoint, cross_entropy, predict, softmax, train_model

DEFAULT_EPOCHS = 8
CHECKPOINTS = 4  # TracIn checkpoints (every other epoch at the default 8 epochs)
FORMAT_VERSION = 3
#: the views vote's core per initial ranker (``signals.VOTE_CORES``); "synthetic" feeds the vote to its
#: regression as one input among others
INITIAL_CORES = {"evidence": "loss+margin+posterior", "vote": "loss+margin+posterior", "loss-vote": "loss",
                 "synthetic": "loss+margin+posterior"}


def _validate(x, y, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must have shape (N, 1|3, H, W), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must have shape ({len(x)},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class indices, got dtype {y.dtype}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {y.min()}..{y.max()}")
    return x, y.astype(np.int64)


def _percentile(reference_sorted: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Fraction of reference values below each raw value, in [0, 1]."""
    return np.searchsorted(reference_sorted, raw, side="right") / max(1, len(reference_sorted))


class SuspicionRanker:
    """Suspiciousness of every item of a labeled image set.

    Attributes after ``fit`` / ``load``:
    scores : float64 (N,) in [0, 1], higher = more suspicious
    predicted : int64 (N,), the model's predicted class per item
    num_classes, input_shape (C, H, W), method, verdict_count, timings (seconds per stage)
    """

    def __init__(self, *, method: str, models: DFauLoModels, labels: np.ndarray, predicted: np.ndarray,
                 features: np.ndarray | None, raw: np.ndarray | None, meta: MetaRanker | None,
                 timings: dict | None = None, reference: np.ndarray | None = None):
        self.method = method
        self.models = models
        self.labels = labels
        self.predicted = predicted
        self.features = features
        self.raw = raw
        # percentile scale: sorted raw scores (loss, tracin) or the views vote's (dfaulo)
        self.reference = np.sort(raw) if raw is not None else reference
        self.meta = meta
        self.inputs = ranker_inputs(features, models, self.reference) if features is not None else None
        self.verdicts: dict[int, bool] = {}
        self.timings = timings or {}
        self.scores = self._score_all()

    # ------------------------------------------------------------------ construction
    @classmethod
    def fit(cls, x, y, *, num_classes: int, method: str = "dfaulo", seed: int = 0,
            epochs: int | None = None, progress: bool = False, base=None,
            initial: str = "evidence", device: str = "cpu") -> "SuspicionRanker":
        """Train a model on ``x`` (N, C, H, W) float32 in [0, 1] with labels ``y`` (N,) in
        0..num_classes-1 and score every item. ``base`` (a ``TrainResult`` on the same data)
        skips training, so several methods can share one model. ``initial`` picks DFauLo's ranker
        before any verdict: "evidence" (default: the mean of the fault kinds' percentile and
        the mixture evidence's, see ``fault_kinds.FaultKinds`` and ``mixture.MixtureEvidence``), "vote" (the views vote alone:
        on the mean percentile of the ensemble loss, the margin and the noise posterior,
        ``transition.fault_posterior``; the activation view's say measured in the run, see
        ``vote.activation_evidence``), "loss-vote" (the views vote as first built: the ensemble
        loss alone, the activation view's say through a fixed ramp) or "synthetic" (the
        paper's). ``device``:
        where training runs ("cpu", "cuda", or "auto" for CUDA when available)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if initial not in INITIAL_RANKERS:
            raise ValueError(f"unknown initial ranker {initial!r}; choose one of {', '.join(INITIAL_RANKERS)}")
        x, y = _validate(x, y, num_classes)
        if len(x) < 2 * num_classes:
            raise ValueError(f"need at least {2 * num_classes} items for {num_classes} classes, got {len(x)}")
        torch.manual_seed(seed)
        timings = {}
        if base is None:
            base = train_model(x, y, num_classes=num_classes, epochs=epochs or DEFAULT_EPOCHS, seed=seed,
                               progress=progress, device=device)
        timings["train"] = base.seconds
        checkpoints = thin_checkpoints(base.checkpoints, keep=CHECKPOINTS)
        t1 = time.perf_counter()
        if method == "dfaulo":
            stages: dict = {}
            models, outputs = fit_dfaulo(x, y, num_classes=num_classes, model=base.model, checkpoints=checkpoints,
                                         seed=seed, progress=progress, timings=stages, device=device,
                                         activation_gate="ramp" if initial == "loss-vote" else "evidence")
            timings["dfaulo_stages"] = stages
            models.vote_core = VOTE_CORES[INITIAL_CORES[initial]]
            features = build_features(outputs, y, models)
            fit_noise_transition(features, models)
            reference = vote_reference(features, models)
            if initial == "evidence":
                fit_mixture(features, models, reference, seed=seed)
            inputs = ranker_inputs(features, models, reference)
            meta = MetaRanker(seed=seed)
            if initial != "synthetic":
                meta.fit_vote(inputs)
            else:
                meta.fit_synthetic(inputs, cls._synthetic_inputs(models, outputs, y, reference, seed=seed))
            predicted = outputs.probs.argmax(1)
            raw = None
        else:
            models = DFauLoModels(
                input_shape=tuple(int(s) for s in x.shape[1:]), num_classes=num_classes,
                base_state=base.model.state_dict(), mutant_states=[], ckpt_states=[c.state for c in checkpoints],
                ckpt_lrs=np.array([c.lr for c in checkpoints]), outlier_view=None, activation_view=None,
                thresholds=np.zeros((3, num_classes)), gates=np.zeros((2, num_classes)))
            features, meta, reference = None, None, None
            predicted, raw = cls._raw_scores(method, models, x, y, base=base.model)
        timings["scoring"] = round(time.perf_counter() - t1, 3)
        timings["total"] = timings["train"] + timings["scoring"]
        return cls(method=method, models=models, labels=y, predicted=predicted, features=features, raw=raw,
                   meta=meta, timings=timings, reference=reference)

    @staticmethod
    def _raw_scores(method: str, models: DFauLoModels, x: np.ndarray, y: np.ndarray, *, base=None):
        base = base if base is not None else models.model(models.base_state)
        logits, feats = predict(base, x)
        probs = softmax(logits)
        if method == "loss":
            return probs.argmax(1), cross_entropy(probs, y)
        from .tracin import last_layer_grad_norm2, self_influence
        ckpts = [Checkpoint(state=s, lr=float(lr), epoch=e)
                 for e, (s, lr) in enumerate(zip(models.ckpt_states, models.ckpt_lrs))]
        # the last checkpoint is the trained model itself: reuse its forward pass
        last = ckpts.pop()
        raw = last.lr * last_layer_grad_norm2(logits, feats, y)
        if ckpts:
            raw += self_influence(base, ckpts, x, y)
        return probs.argmax(1), raw

    @staticmethod
    def _synthetic_inputs(models: DFauLoModels, outputs, y: np.ndarray, reference: np.ndarray, *,
                          seed: int) -> np.ndarray:
        """Ranker inputs of synthetic faults: synthetic noise inputs under random labels (the
        paper's), and real items under a wrong label (half random, half the model's most
        plausible other class, as systematic confusions look)."""
        rng = np.random.default_rng(seed)
        c = models.num_classes
        flip_idx = rng.choice(len(y), size=min(len(y), 1000), replace=False)
        flipped = (y[flip_idx] + rng.integers(1, c, len(flip_idx))) % c
        confusable = outputs.probs[flip_idx].copy()
        confusable[np.arange(len(flip_idx)), y[flip_idx]] = -1
        half = len(flip_idx) // 2
        flipped[:half] = confusable[:half].argmax(1)
        flips = build_features(outputs.take(flip_idx), flipped, models)
        noise_x = synthetic_noise_inputs(max(c, len(flip_idx) // 10), input_shape=models.input_shape, seed=seed)
        noise = build_features(compute_outputs(models, noise_x), rng.integers(0, c, len(noise_x)), models)
        return ranker_inputs(np.concatenate([flips, noise]), models, reference)

    # ------------------------------------------------------------------ scoring
    def _score_all(self) -> np.ndarray:
        if self.method == "dfaulo":
            return self.meta.score(self.inputs).astype(np.float64)
        return _percentile(self.reference, self.raw).astype(np.float64)

    @property
    def num_classes(self) -> int:
        return self.models.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.models.input_shape

    @property
    def verdict_count(self) -> int:
        return len(self.verdicts)

    def __len__(self) -> int:
        return len(self.labels)

    def update(self, indices, is_fault) -> np.ndarray:
        """Record verdicts (item index -> is it a fault); a later verdict on the same item replaces
        the earlier one. DFauLo refits its meta-ranker on all verdicts so far (once both a fault
        and a clean item are among them). Returns the new scores (N,) for every item."""
        indices = np.atleast_1d(np.asarray(indices))
        is_fault = np.atleast_1d(np.asarray(is_fault))
        if indices.shape != is_fault.shape or indices.ndim != 1:
            raise ValueError(f"indices and is_fault must be 1-D of equal length, got {indices.shape} and {is_fault.shape}")
        if len(indices) and (not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0
                             or indices.max() >= len(self)):
            raise ValueError(f"indices must be integers in 0..{len(self) - 1}")
        for i, f in zip(indices.tolist(), is_fault.astype(bool).tolist()):
            self.verdicts[int(i)] = bool(f)
        if self.method == "dfaulo" and self.verdicts:
            idx = np.fromiter(self.verdicts.keys(), dtype=np.int64)
            verdict = np.fromiter(self.verdicts.values(), dtype=bool)
            if self.meta.refit(self.inputs[idx], verdict):
                self.scores = self._score_all()
        return self.scores

    def score_new(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Scores (M,) in [0, 1] and predicted classes (M,) for items not seen in fit."""
        x, y = _validate(x, y, self.num_classes)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x must have items of shape {self.input_shape}, got {tuple(x.shape[1:])}")
        if len(x) == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        if self.method == "dfaulo":
            out = compute_outputs(self.models, x)
            inputs = ranker_inputs(build_features(out, y, self.models), self.models, self.reference)
            return self.meta.score(inputs).astype(np.float64), out.probs.argmax(1)
        predicted, raw = self._raw_scores(self.method, self.models, x, y)
        return _percentile(self.reference, raw).astype(np.float64), predicted

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> None:
        """Write the ranker to ``directory`` (created if needed): model weights in ``weights.pt``,
        the rest in ``ranker.joblib``; written to temporary names first, then renamed."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        m = self.models
        weights = {"base": m.base_state, "mutants": m.mutant_states, "checkpoints": m.ckpt_states}
        torch.save(weights, d / "weights.pt.tmp")
        rest = {"format": FORMAT_VERSION, "method": self.method, "labels": self.labels,
                "predicted": self.predicted, "features": self.features, "raw": self.raw, "meta": self.meta,
                "reference": self.reference,
                "verdicts": self.verdicts, "timings": self.timings, "input_shape": m.input_shape,
                "num_classes": m.num_classes, "ckpt_lrs": m.ckpt_lrs, "outlier_view": m.outlier_view,
                "activation_view": m.activation_view, "thresholds": m.thresholds, "gates": m.gates,
                "vote_core": m.vote_core, "mixture": m.mixture, "vote_sorted": m.vote_sorted,
                "label_prior": m.label_prior, "noise_transition": m.noise_transition,
                "fault_kinds": m.fault_kinds}
        joblib.dump(rest, d / "ranker.joblib.tmp")
        os.replace(d / "weights.pt.tmp", d / "weights.pt")
        os.replace(d / "ranker.joblib.tmp", d / "ranker.joblib")
        (d / "ranker.json").write_text(json.dumps({"format": FORMAT_VERSION, "method": self.method,
                                                   "items": len(self), "num_classes": m.num_classes}))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SuspicionRanker":
        """Read a ranker written by ``save``. Raises ``ValueError`` when the folder holds none."""
        d = Path(directory)
        if not (d / "weights.pt").is_file() or not (d / "ranker.joblib").is_file():
            raise ValueError(f"{d} holds no saved ranker (weights.pt and ranker.joblib)")
        weights = torch.load(d / "weights.pt", weights_only=True)
        rest = joblib.load(d / "ranker.joblib")
        if rest.get("format") != FORMAT_VERSION:
            raise ValueError(f"{d} holds a ranker of format {rest.get('format')}, expected {FORMAT_VERSION}")
        models = DFauLoModels(
            input_shape=tuple(rest["input_shape"]), num_classes=rest["num_classes"],
            base_state=weights["base"], mutant_states=weights["mutants"], ckpt_states=weights["checkpoints"],
            ckpt_lrs=rest["ckpt_lrs"], outlier_view=rest["outlier_view"],
            activation_view=rest["activation_view"], thresholds=rest["thresholds"], gates=rest["gates"],
            vote_core=tuple(rest.get("vote_core", ("ensemble_loss",))), mixture=rest.get("mixture"),
            vote_sorted=rest.get("vote_sorted"), label_prior=rest.get("label_prior"),
            noise_transition=rest.get("noise_transition"), fault_kinds=rest.get("fault_kinds"))
        ranker = cls(method=rest["method"], models=models, labels=rest["labels"], predicted=rest["predicted"],
                     features=rest["features"], raw=rest["raw"], meta=rest["meta"], timings=rest["timings"],
                     reference=rest["reference"])
        ranker.verdicts = dict(rest["verdicts"])
        ranker.scores = ranker._score_all()
        return ranker
