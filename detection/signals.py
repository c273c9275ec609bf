"""The signals the ranking before verdicts is made of, read from DFauLo's feature columns.

``named_signals`` is the one place that knows which column of ``dfaulo.build_features`` holds
what: the ensemble loss, the margin, the checkpoints' loss, TracIn, the views' scores, and the
fault posterior under the noise transition (``transition``). On them: the views vote
(``vote.views_vote`` on the ``VOTE_CORES`` percentiles), the fault kinds
(``fault_kinds.FaultKinds``: the probability of a fault of any kind a view sees), the mixture
evidence (``mixture.MixtureEvidence``), and ``ranker_inputs``, what the meta-ranker sees.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .dfaulo import DFauLoModels, balanced
from .transition import confident_transition, fault_posterior
from .vote import views_vote


#: the output-level cores the views vote can rank by: the ensemble loss alone (the vote as it
#: was first built) or its mean percentile with the final model's margin (label's probability
#: minus the largest other one, negated), and with the posterior probability of a wrong label
#: under the estimated noise transition (``transition.fault_posterior``)
VOTE_CORES = {"loss": ("ensemble_loss",), "loss+margin": ("ensemble_loss", "margin"),
              "loss+margin+posterior": ("ensemble_loss", "margin", "noise_posterior")}


def vote_columns(num_classes: int, num_checkpoints: int) -> tuple[int, int, int]:
    """Columns of ``build_features`` holding the views' scores for the vote: the ensemble loss,
    the activation view score and the log outlier view score."""
    c, e = num_classes, num_checkpoints
    return 5 * c + 7 + e + 5, 5 * c + 7 + e + 2, 5 * c + 7 + e + 1


def margin_column(num_classes: int, num_checkpoints: int) -> int:
    """Column of ``build_features`` holding the final model's margin for the label."""
    return 5 * num_classes + 7 + num_checkpoints + 4


def posterior_probs(features: np.ndarray, models: DFauLoModels) -> np.ndarray:
    """``(N, C)``: the mean of the original model's and the three mutants' probabilities (columns
    of ``build_features``), corrected for the label prior (``balanced``): the true-class posterior
    behind the noise transition and the fault posterior."""
    c = models.num_classes
    mean = (features[:, :c].astype(np.float64)
            + features[:, 2 * c:5 * c].astype(np.float64).reshape(len(features), 3, c).sum(1)) / 4.0
    return balanced(mean, models.label_prior)


def fit_noise_transition(features: np.ndarray, models: DFauLoModels) -> None:
    """Estimate ``models.noise_transition`` from the training items' ``features``."""
    models.noise_transition = confident_transition(posterior_probs(features, models), item_labels(features, models))


def item_labels(features: np.ndarray, models: DFauLoModels) -> np.ndarray:
    """``(N,)``: the labels the ``features`` were built under (their one-hot columns)."""
    c = models.num_classes
    return features[:, c:2 * c].argmax(1)


def named_signals(features: np.ndarray, models: DFauLoModels, names: tuple[str, ...]) -> np.ndarray:
    """``(len(names), N)``, higher = more suspicious, from the columns of ``build_features``: the
    ensemble loss, the negated final margin, the fault posterior ("noise_posterior", needs
    ``models.noise_transition``), their logs ("log_ensemble_loss", "log_noise_posterior"), the
    checkpoints' mean log loss, log TracIn, the activation view score and the log outlier score."""
    c, e = models.num_classes, len(models.ckpt_lrs)
    loss_col, act_col, outlier_col = vote_columns(c, e)
    known = {
        "ensemble_loss": lambda: features[:, loss_col],
        "log_ensemble_loss": lambda: np.log(features[:, loss_col].astype(np.float64) + 1e-4),
        "margin": lambda: -features[:, margin_column(c, e)],
        "noise_posterior": lambda: _noise_posterior(features, models),
        "log_noise_posterior": lambda: np.log(_noise_posterior(features, models) + 1e-6),
        "checkpoint_loss": lambda: np.log(features[:, 5 * c + 7:5 * c + 7 + e].astype(np.float64) + 1e-4).mean(1),
        "tracin": lambda: features[:, 5 * c + 7 + e],
        "activation": lambda: features[:, act_col],
        "outlier": lambda: features[:, outlier_col],
    }
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"signals must name some of {', '.join(known)}, got {names!r}")
    return np.stack([np.asarray(known[n](), dtype=np.float64) for n in names])


def _noise_posterior(features: np.ndarray, models: DFauLoModels) -> np.ndarray:
    if models.noise_transition is None:
        raise ValueError("the noise posterior needs models.noise_transition (fit_noise_transition)")
    return fault_posterior(posterior_probs(features, models), item_labels(features, models), models.noise_transition)


def vote_signals(features: np.ndarray, models: DFauLoModels) -> np.ndarray:
    """``(K + 2, N)``, higher = more suspicious: the K signals of ``models.vote_core``, then the
    activation and the log outlier view scores."""
    if not models.vote_core:
        raise ValueError("the vote core names no signal")
    return named_signals(features, models, tuple(models.vote_core) + ("activation", "outlier"))


#: the signals of the mixture evidence, output-level first (``MIXTURE_CORE`` of them); rankers
#: saved before the noise posterior joined keep the names they were fitted on (``mixture.names``)
MIXTURE_SIGNALS = ("log_ensemble_loss", "margin", "log_noise_posterior", "checkpoint_loss", "tracin",
                   "activation", "outlier")
MIXTURE_CORE = 5
#: what the first mixture was fitted on, under the names it was saved with
_FIRST_MIXTURE_NAMES = {"ensemble_loss": "log_ensemble_loss"}


def mixture_signals(features: np.ndarray, models: DFauLoModels) -> np.ndarray:
    """``(K, N)``, higher = more suspicious: the signals ``models.mixture`` was fitted on
    (``MIXTURE_SIGNALS`` when none is fitted yet)."""
    names = MIXTURE_SIGNALS if models.mixture is None else models.mixture.names
    return named_signals(features, models, tuple(_FIRST_MIXTURE_NAMES.get(n, n) for n in names))


def fit_mixture(features: np.ndarray, models: DFauLoModels, reference: np.ndarray, *, seed: int = 0) -> None:
    """Fit ``models.mixture`` and ``models.fault_kinds`` on the training items' ``features``
    (``reference``: their ``vote_reference``)."""
    from .fault_kinds import FaultKinds
    from .mixture import MixtureEvidence

    models.mixture = models.vote_sorted = models.fault_kinds = None
    models.mixture = MixtureEvidence.fit(named_signals(features, models, MIXTURE_SIGNALS), names=MIXTURE_SIGNALS,
                                         core=MIXTURE_CORE, seed=seed)
    parts = vote_parts(features, models, reference)
    models.fault_kinds = FaultKinds.fit(parts.core, parts.activation, parts.outlier, models.gates, parts.labels,
                                        seed=seed)


def vote_reference(features: np.ndarray, models: DFauLoModels) -> np.ndarray:
    """Sorted ``vote_signals`` of the training items ``(K + 2, N)``: the scale on which the views
    vote ranks any item."""
    return np.sort(vote_signals(features, models), axis=1)


class VoteParts(NamedTuple):
    """What the views vote and the fault kinds are made of, each ``(N,)``: the output-level
    ``core`` percentile (the mean percentile of the ``models.vote_core`` signals among the training
    items), the percentiles of the activation and outlier view scores, those scores themselves
    (``activation``, ``outlier``: the activation score and the log outlier score) and the labels."""

    core: np.ndarray
    activation_pct: np.ndarray
    outlier_pct: np.ndarray
    activation: np.ndarray
    outlier: np.ndarray
    labels: np.ndarray


def vote_parts(features: np.ndarray, models: DFauLoModels, reference: np.ndarray) -> VoteParts:
    """The ``VoteParts`` of the items of ``features`` on the training items' ``reference``
    (``vote_reference``)."""
    signals = vote_signals(features, models)
    if reference.shape[0] != len(signals):
        raise ValueError(f"the vote's reference has {reference.shape[0]} rows, its core needs {len(signals)}")
    pct = [np.searchsorted(ref, sig, side="right") / reference.shape[1] for ref, sig in zip(reference, signals)]
    return VoteParts(core=np.mean(pct[:-2], axis=0), activation_pct=pct[-2], outlier_pct=pct[-1],
                     activation=signals[-2], outlier=signals[-1], labels=item_labels(features, models))


def ranker_inputs(features: np.ndarray, models: DFauLoModels, reference: np.ndarray) -> np.ndarray:
    """Meta-ranker inputs ``(N, F)``: the view-level features (everything after the 5C
    probability and label columns) and, as the last column, the ranking before verdicts.

    That is the mean of two percentiles among the training items when ``models.fault_kinds`` is
    fitted: the fault-kinds evidence's (``fault_kinds.FaultKinds``: the probability of a fault of
    any kind the views see) and the mixture evidence's (``mixture.MixtureEvidence``). Rankers
    saved before the fault kinds have the views vote (``vote.views_vote``: the core percentile
    averaged with the activation and outlier percentiles where the item's class gives those views
    a say) in its place, or the vote alone when they have no mixture either.

    The compact inputs let the refit learn from a few hundred verdicts where the 5C probability
    columns made it overfit (measured with scripts/benchmark.py).
    """
    c = models.num_classes
    parts = vote_parts(features, models, reference)
    kinds = getattr(models, "fault_kinds", None)
    mixture = getattr(models, "mixture", None)
    if kinds is not None and mixture is not None:
        kinds_pct = kinds.percentile(parts.core, parts.activation, parts.outlier, models.gates, parts.labels)
        score = 0.5 * (kinds_pct + mixture.percentile(mixture_signals(features, models)))
    else:
        score = views_vote(parts.core, parts.activation_pct, parts.outlier_pct, parts.labels, models.gates)
        if mixture is not None:
            sorted_vote = models.vote_sorted
            score = 0.5 * (np.searchsorted(sorted_vote, score, side="right") / len(sorted_vote)
                           + mixture.percentile(mixture_signals(features, models)))
    return np.concatenate([features[:, 5 * c:], score[:, None]], 1).astype(np.float64)
