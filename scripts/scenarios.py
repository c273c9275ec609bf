"""Seeded fault scenarios for the benchmark: a development draw to tune on, a test draw to report.

Scenario ``index`` of a draw depends only on (draw, index), never on how many are drawn, so a
longer run extends a shorter one. A scenario picks a source (MNIST 5,000, Fashion-MNIST 10,000,
scikit-learn's digits), a total fault rate in 3-25%, and one fault kind or a mixture of two:
symmetric, pair (c -> c+1), a random permutation of the classes, a confusion restricted to some
classes, many-to-one, out-of-distribution items from one or two origins (photos, smooth noise,
regular patterns, another data set). Classes are drawn so that no class has more than about half
of its items changed.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.data import LabeledImages  # noqa: E402
from detection.noise import OOD_ORIGINS, FaultPart, PlantedFaults, plant_faults  # noqa: E402
from detection.sources import OTHER_SOURCE, load_source  # noqa: E402

DRAWS = {"dev": 1, "test": 2}
SOURCE_LIMITS = {"mnist": 5000, "fashion": 10000, "digits": None}
KINDS = ("symmetric", "pair", "permutation", "classes", "many-to-one", "ood")
RATE_RANGE = (0.03, 0.25)
MIXTURE_SHARE = 0.35       # chance that a scenario mixes two kinds
NUM_CLASSES = 10           # every source has 10 classes


@dataclass(frozen=True)
class Scenario:
    draw: str
    index: int
    source: str
    limit: int | None
    parts: tuple[FaultPart, ...]

    @property
    def seed(self) -> int:
        return 1000 * DRAWS[self.draw] + self.index

    @property
    def rate(self) -> float:
        return float(sum(p.rate for p in self.parts))

    @property
    def name(self) -> str:
        size = f" {self.limit // 1000}k" if self.limit else ""
        return f"{self.draw}#{self.index} {self.source}{size}: " + " + ".join(_part_name(p) for p in self.parts)


def _part_name(p: FaultPart) -> str:
    pct = f"{100 * p.rate:.1f}%"
    if p.kind == "ood":
        return f"ood/{p.origin} {pct}"
    if p.kind == "classes":
        return f"classes{list(p.classes)} {pct}"
    if p.kind == "many-to-one":
        return f"{list(p.classes)}->{p.target} {pct}"
    return f"{p.kind} {pct}"


def _label_part(kind: str, rate: float, *, total: float, rng: np.random.Generator) -> FaultPart:
    k = NUM_CLASSES
    # enough classes that ``rate`` of all items is at most ~45% of theirs, after earlier parts
    needed = math.ceil(2.2 * rate * k / (1.0 - (total - rate)))
    if kind == "classes":
        m = min(k, max(needed, int(rng.integers(2, 5))))
        return FaultPart(kind, rate, classes=tuple(int(c) for c in np.sort(rng.choice(k, m, replace=False))))
    if kind == "many-to-one":
        target = int(rng.integers(k))
        m = min(k - 1, max(needed, int(rng.integers(2, 4))))
        others = np.setdiff1d(np.arange(k), [target])
        return FaultPart(kind, rate, classes=tuple(int(c) for c in np.sort(rng.choice(others, m, replace=False))),
                         target=target)
    return FaultPart(kind, rate)


def _ood_parts(rate: float, rng: np.random.Generator) -> list[FaultPart]:
    origins = rng.choice(OOD_ORIGINS, size=int(rng.integers(1, 3)), replace=False)
    if len(origins) == 1:
        return [FaultPart("ood", rate, origin=str(origins[0]))]
    first = round(rate * float(rng.uniform(0.3, 0.7)), 4)
    return [FaultPart("ood", first, origin=str(origins[0])), FaultPart("ood", round(rate - first, 4),
                                                                         origin=str(origins[1]))]


def draw_scenario(draw: str, index: int) -> Scenario:
    """Scenario ``index`` (>= 0) of ``draw`` ("dev" or "test")."""
    if draw not in DRAWS:
        raise ValueError(f"unknown draw {draw!r}; choose one of {', '.join(DRAWS)}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    rng = np.random.default_rng([DRAWS[draw], index])
    source = str(rng.choice(list(SOURCE_LIMITS)))
    total = round(float(rng.uniform(*RATE_RANGE)), 3)
    if rng.random() < MIXTURE_SHARE:
        kinds = [str(k) for k in rng.choice(KINDS, size=2, replace=False)]
        first = round(total * float(rng.uniform(0.3, 0.7)), 4)
        rates = [first, round(total - first, 4)]
    else:
        kinds, rates = [str(rng.choice(KINDS))], [total]
    label = [(k, r) for k, r in zip(kinds, rates) if k != "ood"]     # label faults first, outliers last
    parts = [_label_part(k, r, total=total, rng=rng) for k, r in label]
    for k, r in zip(kinds, rates):
        if k == "ood":
            parts += _ood_parts(r, rng)
    return Scenario(draw=draw, index=index, source=source, limit=SOURCE_LIMITS[source], parts=tuple(parts))


def draw_scenarios(draw: str, count: int, *, sources=None, start: int = 0) -> list[Scenario]:
    """The first ``count`` scenarios of ``draw`` from index ``start`` on (only those of
    ``sources``, when given). A later ``start`` gives scenarios no earlier run has seen."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    unknown = set(sources or ()) - set(SOURCE_LIMITS)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose among {', '.join(SOURCE_LIMITS)}")
    out, index = [], start
    while len(out) < count:
        s = draw_scenario(draw, index)
        if not sources or s.source in sources:
            out.append(s)
        index += 1
    return out


class Realized(NamedTuple):
    images: LabeledImages   # x and y with the faults planted
    planted: PlantedFaults


def realize(scenario: Scenario) -> Realized:
    """Load the scenario's source and plant its faults (seeded by the scenario)."""
    clean = load_source(scenario.source, limit=scenario.limit, seed=scenario.seed)
    needs_other = any(p.kind == "ood" and p.origin == "other" for p in scenario.parts)
    other = load_source(OTHER_SOURCE[scenario.source]).x if needs_other else None
    planted = plant_faults(clean.x, clean.y, scenario.parts, num_classes=clean.num_classes, seed=scenario.seed,
                           other=other)
    clean.x, clean.y = planted.x, planted.labels
    return Realized(clean, planted)
