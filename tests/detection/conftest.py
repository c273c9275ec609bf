import numpy as np
import pytest
import torch

from detection.noise import inject_label_noise
from detection.sources import load_source


@pytest.fixture(scope="session")
def digits_small():
    """600 sklearn digits (1x28x28) with 10% symmetric label noise: (x, noisy y, is_fault)."""
    torch.set_num_threads(1)
    d = load_source("digits", limit=600, seed=0)
    y, is_fault = inject_label_noise(d.y, rate=0.1, kind="symmetric", num_classes=10, seed=0)
    return d.x, y, is_fault


@pytest.fixture(scope="session")
def trained(digits_small):
    from detection.train import train_model
    x, y, _ = digits_small
    return train_model(x, y, num_classes=10, epochs=4, seed=0)


@pytest.fixture(scope="session")
def dfaulo_ranker(digits_small, trained):
    from detection.pipeline import SuspicionRanker
    x, y, _ = digits_small
    return SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained)


def write_png(path, array):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
