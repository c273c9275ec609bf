"""DFauLo (Data Fault Localization): views, mutant models and per-item features.

The paper's recipe, without the defects of the official code (SSCT-Lab/DFauLo): there the
mutants are fine-tuned one after another on the same model object, the third one drops the
activation view again instead of the loss view, the activation view takes the whole KMeans
minority cluster (about 40% of a class on MNIST), the losses apply cross-entropy to softmax
outputs and the features reach the regression unscaled. Here: three independent mutants, each a
copy of the *original* model fine-tuned on the data minus one view (input-level outliers,
hidden-level minority cluster bounded by alpha, output-level top loss); losses from logits (no
double softmax); features standardized before the meta-ranker.

Everything an item's features need is kept as *label-independent* model outputs
(``ModelOutputs``), so the features of any item under any label can be built later: for new
items, and for synthetic label flips that train the initial ranker.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .models import build_model
from .train import Checkpoint, predict, predict_shifted, softmax, train_model
from .views import ActivationView, OutlierView, class_thresholds, top_per_class
from .vote import ACTIVATION_GATES, view_gates

VIEW_NAMES = ("outlier", "activation", "loss")


@dataclass
class ModelOutputs:
    """Label-independent outputs for N items (C classes, E checkpoints).

    probs (N, C) of the original model; mutant_probs (3, N, C); ckpt_probs (E, N, C) and
    ckpt_hnorm2 (E, N) (squared norm of penultimate activations) per checkpoint;
    outlier (N, C) and activation (N, C) view scores of each item against each class;
    ensemble_probs (N, C): the mean of 8 predictions, the original model's on the item and on
    its four one-pixel shifts and the three mutants' on the item.
    """

    probs: np.ndarray
    mutant_probs: np.ndarray
    ckpt_probs: np.ndarray
    ckpt_hnorm2: np.ndarray
    outlier: np.ndarray
    activation: np.ndarray
    ensemble_probs: np.ndarray

    def __len__(self) -> int:
        return len(self.probs)

    def take(self, idx: np.ndarray) -> "ModelOutputs":
        return ModelOutputs(self.probs[idx], self.mutant_probs[:, idx], self.ckpt_probs[:, idx],
                            self.ckpt_hnorm2[:, idx], self.outlier[idx], self.activation[idx],
                            self.ensemble_probs[idx])


@dataclass
class DFauLoModels:
    """What DFauLo fitted: the original model, three mutants, checkpoints, views, thresholds."""

    input_shape: tuple[int, int, int]
    num_classes: int
    base_state: dict
    mutant_states: list[dict]
    ckpt_states: list[dict]
    ckpt_lrs: np.ndarray
    outlier_view: OutlierView
    activation_view: ActivationView
    thresholds: np.ndarray  # (3, C): outlier, activation, loss flags at the per-class top alpha
    gates: np.ndarray       # (2, C): the activation and outlier views' say in the vote (vote.view_gates)
    #: the output-level signals whose mean percentile is the vote's core (``VOTE_CORES``);
    #: rankers saved before the margin joined the core have the ensemble loss alone
    vote_core: tuple[str, ...] = ("ensemble_loss",)
    #: the mixture evidence (``mixture.MixtureEvidence`` on ``mixture_signals``); with it the
    #: ranking before verdicts (initial ranker "evidence") is the mean of its percentile and the
    #: fault kinds' (``fault_kinds``). None: the vote alone (initial ranker "vote")
    mixture: object | None = None
    #: rankers saved before the fault kinds: the training items' views vote, sorted, whose
    #: percentile they average with the mixture's instead
    vote_sorted: np.ndarray | None = None
    #: (C,) the share of each class among the training labels (``label_prior``); the margin and
    #: the ensemble loss are computed on probabilities divided by it (``balanced``). None: on the
    #: model's probabilities as they are (rankers saved before)
    label_prior: np.ndarray | None = None
    #: (C, C) the estimated noise transition (``transition.confident_transition``) behind the
    #: "noise_posterior" signal. None: rankers saved before it, whose vote and mixture lack it
    noise_transition: np.ndarray | None = None
    #: the fault-kinds evidence (``fault_kinds.FaultKinds``); with ``mixture``, the ranking before
    #: verdicts is the mean of its and the mixture's percentiles. None: rankers saved before it,
    #: which average the views vote (``vote_sorted``) with the mixture instead
    fault_kinds: object | None = None

    def model(self, state: dict) -> nn.Module:
        m = build_model(self.input_shape, self.num_classes)
        m.load_state_dict(state)
        return m.eval()


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def compute_outputs(models: DFauLoModels, x: np.ndarray, *,
                    base_out: tuple[np.ndarray, np.ndarray] | None = None) -> ModelOutputs:
    """Run the original model, the mutants and every checkpoint over ``x`` (N, C, H, W).
    ``base_out`` = the original model's (logits, features) on ``x`` when already computed."""
    base = models.model(models.base_state)
    logits, feats = base_out if base_out is not None else predict(base, x)
    mutant_probs = np.stack([softmax(predict(models.model(s), x)[0]) for s in models.mutant_states])
    probs = softmax(logits)
    ensemble = (probs + predict_shifted(base, x).sum(0) + mutant_probs.sum(0)) / (5 + len(mutant_probs))
    ckpt_probs, ckpt_hnorm2 = [], []
    work = models.model(models.base_state)
    for state in models.ckpt_states:
        if _same_state(state, models.base_state):   # the last checkpoint is the original model
            lg, h = logits, feats
        else:
            work.load_state_dict(state)
            lg, h = predict(work, x)
        ckpt_probs.append(softmax(lg))
        ckpt_hnorm2.append((h.astype(np.float64) ** 2).sum(1).astype(np.float32))
    return ModelOutputs(
        probs=probs, mutant_probs=mutant_probs,
        ckpt_probs=np.stack(ckpt_probs).astype(np.float32), ckpt_hnorm2=np.stack(ckpt_hnorm2),
        outlier=models.outlier_view.score_all(x), activation=models.activation_view.score_all(feats),
        ensemble_probs=ensemble.astype(np.float32))


def label_prior(labels: np.ndarray, *, num_classes: int) -> np.ndarray:
    """``(C,)``: each class's share of ``labels`` (N,), with one pseudo-count per class so that a
    class without items gets a small share, not 0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    return (counts + 1.0) / (counts.sum() + num_classes)


def balanced(probs: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    """``(N, C)``: ``probs`` divided by the label ``prior`` (C,) and renormalized; ``probs`` as
    they are when ``prior`` is None.

    A classifier's probability of class c is its evidence for c times c's share of the training
    labels. Faults that flow into one class (many-to-one) inflate that share, so the model leans
    to that class for every item, and its own wrong labels look plausible. Divided by the share,
    what is left compares the classes on the item's evidence alone (the label-prior correction
    of logit adjustment, Menon et al. 2021). With balanced labels it changes nothing."""
    if prior is None:
        return probs
    adjusted = np.asarray(probs, dtype=np.float64) / prior[None, :]
    return adjusted / adjusted.sum(1, keepdims=True)


def _ce(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0))


def tracin_from_outputs(out: ModelOutputs, labels: np.ndarray, lrs: np.ndarray) -> np.ndarray:
    """TracIn last-layer self-influence ``(N,)`` from the stored checkpoint outputs."""
    total = np.zeros(len(labels))
    rows = np.arange(len(labels))
    for e, lr in enumerate(lrs):
        p = out.ckpt_probs[e].astype(np.float64).copy()
        p[rows, labels] -= 1.0
        total += lr * (p ** 2).sum(1) * (out.ckpt_hnorm2[e] + 1.0)
    return total


def build_features(out: ModelOutputs, labels: np.ndarray, models: DFauLoModels) -> np.ndarray:
    """Feature matrix ``(N, 5C + 7 + E + 6)`` of items under ``labels`` (N,).

    The paper's 5C + 7: original softmax (C), one-hot label (C), mutant softmaxes (3C), three
    "in this view" flags, four losses (original + mutants). Added: the loss at each of the E
    checkpoints, log TracIn self-influence, the continuous outlier and activation scores for the
    label, the outlier score against the nearest class, the label's margin, and the loss of the
    ensemble prediction (``ModelOutputs.ensemble_probs``); these two on probabilities corrected
    for the label prior (``balanced`` with ``models.label_prior``).
    """
    labels = np.asarray(labels, dtype=np.int64)
    n, c = out.probs.shape
    rows = np.arange(n)
    onehot = np.eye(c, dtype=np.float32)[labels]
    loss0 = _ce(out.probs, labels)
    mutant_losses = [_ce(p, labels) for p in out.mutant_probs]
    outl = out.outlier[rows, labels]
    act = out.activation[rows, labels]
    thr = models.thresholds
    flags = np.stack([outl > thr[0, labels], act > thr[1, labels], loss0 > thr[2, labels]], 1)
    ckpt_losses = np.stack([_ce(p, labels) for p in out.ckpt_probs], 1)
    prior = models.label_prior
    others = balanced(out.probs, prior).copy()
    own = others[rows, labels]
    others[rows, labels] = -1
    margin = own - others.max(1)
    extras = np.stack([np.log1p(tracin_from_outputs(out, labels, models.ckpt_lrs)), np.log(outl + 1e-6), act,
                       np.log(out.outlier.min(1) + 1e-6), margin,
                       _ce(balanced(out.ensemble_probs, prior), labels)], 1)
    return np.concatenate([
        out.probs, onehot, out.mutant_probs.transpose(1, 0, 2).reshape(n, -1), flags.astype(np.float32),
        np.stack([loss0, *mutant_losses], 1), ckpt_losses, extras], 1).astype(np.float32)


def _fine_tune(base: nn.Module, x: np.ndarray, y: np.ndarray, *, keep: np.ndarray, num_classes: int,
               epochs: int, lr: float, seed: int, device: str = "cpu") -> dict:
    mutant = copy.deepcopy(base)
    train_model(x[keep], y[keep], num_classes=num_classes, epochs=epochs, lr=lr, seed=seed,
                model=mutant, warmup=False, device=device)
    return copy.deepcopy(mutant.state_dict())


def fit_dfaulo(x: np.ndarray, y: np.ndarray, *, num_classes: int, model: nn.Module,
               checkpoints: list[Checkpoint], alpha: float = 0.05,
               mutant_epochs: int = 1, mutant_lr: float = 0.01, seed: int = 0,
               progress: bool = False, timings: dict | None = None,
               device: str = "cpu", activation_gate: str = "evidence") -> tuple[DFauLoModels, ModelOutputs]:
    """Views, mutants and outputs of all items, around an already trained original model.

    ``x`` (N, C, H, W) and ``y`` (N,) are the training items; ``model`` was trained on them and
    ``checkpoints`` are its training checkpoints (their outputs become features).
    Returns the fitted models and the outputs of every item. ``timings`` (optional) receives the
    seconds each stage took. ``device``: where the mutants are fine-tuned (see
    ``train.resolve_device``). ``activation_gate``: how the activation view's say in the vote is
    decided (``vote.ACTIVATION_GATES``: "evidence" measured in the run, or the "ramp" of the
    vote as first built).
    """
    if activation_gate not in ACTIVATION_GATES:
        raise ValueError(f"activation_gate must be one of {', '.join(ACTIVATION_GATES)}, got {activation_gate!r}")
    bar = None
    last = [time.perf_counter()]
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=5, desc="DFauLo", unit="stage", leave=False)

    def tick(stage: str) -> None:
        now = time.perf_counter()
        if timings is not None:
            timings[stage] = round(now - last[0], 3)
        last[0] = now
        if bar is not None:
            bar.set_postfix_str(stage)
            bar.update(1)

    model = model.eval()
    logits, feats = predict(model, x)
    loss0 = _ce(softmax(logits), y)
    outlier_view = OutlierView(num_classes=num_classes).fit(x, y)
    activation_view = ActivationView(num_classes=num_classes, seed=seed).fit(feats, y)
    rows = np.arange(len(y))
    outl_all = outlier_view.score_all(x)
    act_all = activation_view.score_all(feats)
    view_scores = [outl_all[rows, y], act_all[rows, y], loss0]
    thresholds = np.stack([class_thresholds(s, y, num_classes=num_classes, alpha=alpha) for s in view_scores])
    gates = view_gates(logits.argmax(1), y, np.log(view_scores[0] + 1e-6), num_classes=num_classes,
                       activation=view_scores[1] if activation_gate == "evidence" else None)
    tick("views")
    mutant_states = []
    for v, s in enumerate(view_scores):
        in_view = top_per_class(s, y, num_classes=num_classes, alpha=alpha)
        mutant_states.append(_fine_tune(model, x, y, keep=~in_view, num_classes=num_classes,
                                        epochs=mutant_epochs, lr=mutant_lr, seed=seed + 1 + v,
                                        device=device))
        tick(f"mutant {VIEW_NAMES[v]}")
    models = DFauLoModels(
        input_shape=tuple(int(s) for s in x.shape[1:]), num_classes=num_classes,
        base_state=copy.deepcopy(model.state_dict()), mutant_states=mutant_states,
        ckpt_states=[c.state for c in checkpoints],
        ckpt_lrs=np.array([c.lr for c in checkpoints]), outlier_view=outlier_view,
        activation_view=activation_view, thresholds=thresholds, gates=gates,
        label_prior=label_prior(y, num_classes=num_classes))
    outputs = compute_outputs(models, x, base_out=(logits, feats))
    tick("outputs")
    if bar is not None:
        bar.close()
    return models, outputs


def synthetic_noise_inputs(count: int, *, input_shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """``count`` synthetic items that belong to no class: half uniform pixel noise, half smooth
    random blobs (noise blurred and rescaled). Shape ``(count, C, H, W)`` float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    out = rng.random((count, *input_shape), dtype=np.float32)
    half = count // 2
    if half:
        blur = torch.nn.functional.avg_pool2d(torch.from_numpy(out[:half]), 5, stride=1, padding=2)
        b = blur.numpy()
        lo = b.min(axis=(1, 2, 3), keepdims=True)
        hi = b.max(axis=(1, 2, 3), keepdims=True)
        out[:half] = (b - lo) / np.maximum(hi - lo, 1e-6)
    return out
