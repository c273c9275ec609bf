import numpy as np
import torch
from torch import nn

from detection.tracin import last_layer_grad_norm2, per_item_grad_norm2, self_influence
from detection.train import Checkpoint


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(16, 5), nn.Tanh())
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        return self.head(self.features(x))


def autograd_last_layer_norm2(model, x, y):
    out = []
    for xi, yi in zip(torch.from_numpy(x), torch.from_numpy(y)):
        model.zero_grad()
        nn.functional.cross_entropy(model(xi[None]), yi[None]).backward()
        out.append(model.head.weight.grad.pow(2).sum() + model.head.bias.grad.pow(2).sum())
    return torch.stack(out).double().numpy()


def test_closed_form_matches_autograd_on_a_tiny_model():
    torch.manual_seed(0)
    model = Tiny()
    x = np.random.default_rng(0).normal(size=(7, 1, 4, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    with torch.no_grad():
        h = model.features(torch.from_numpy(x))
        logits = model.head(h)
    closed = last_layer_grad_norm2(logits.numpy(), h.numpy(), y)
    assert np.allclose(closed, autograd_last_layer_norm2(model, x, y), rtol=1e-4)
    # torch.func per-item gradients restricted to the head give the same numbers
    assert np.allclose(per_item_grad_norm2(model, x, y, layers="head"), closed, rtol=1e-4)


def test_self_influence_is_lr_weighted_sum_over_checkpoints():
    torch.manual_seed(1)
    a, b = Tiny(), Tiny()
    x = np.random.default_rng(1).normal(size=(5, 1, 4, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    ckpts = [Checkpoint(state=a.state_dict(), lr=0.1, epoch=0), Checkpoint(state=b.state_dict(), lr=0.02, epoch=1)]
    got = self_influence(a, ckpts, x, y)
    want = 0.1 * autograd_last_layer_norm2(a, x, y) + 0.02 * autograd_last_layer_norm2(b, x, y)
    assert np.allclose(got, want, rtol=1e-4)
    full = self_influence(a, ckpts, x, y, layers="all")
    assert (full >= got - 1e-9).all()   # all layers include the head's share


def test_unknown_layer_is_a_clear_error():
    import pytest
    with pytest.raises(ValueError, match="no parameter matches"):
        per_item_grad_norm2(Tiny(), np.zeros((2, 1, 4, 4), np.float32), np.array([0, 1]), layers=["nope"])
