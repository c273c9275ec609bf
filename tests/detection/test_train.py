import numpy as np
import pytest

from detection.models import SmallResNet, build_model
from detection.train import predict, train_model


def test_training_is_deterministic_under_a_seed_and_keeps_lr_per_checkpoint(digits_small):
    x, y, _ = digits_small
    a = train_model(x[:200], y[:200], num_classes=10, epochs=2, seed=3)
    b = train_model(x[:200], y[:200], num_classes=10, epochs=2, seed=3)
    assert np.allclose(predict(a.model, x[:50])[0], predict(b.model, x[:50])[0], atol=1e-5)
    assert [c.epoch for c in a.checkpoints] == [0, 1] and all(c.lr > 0 for c in a.checkpoints)
    assert a.visit_loss.shape == (200, 2) and (a.visit_loss > 0).all()


def test_color_input_gets_a_resnet_that_trains():
    rng = np.random.default_rng(0)
    y = np.arange(64) % 2
    x = rng.random((64, 3, 32, 32), dtype=np.float32) * 0.5
    x[y == 1, 0] += 0.5   # class 1 is redder
    assert isinstance(build_model((3, 32, 32), 2), SmallResNet)
    r = train_model(x, y, num_classes=2, epochs=8, seed=0, batch_size=16)
    assert (predict(r.model, x)[0].argmax(1) == y).mean() > 0.9


def test_device_choice_is_checked_and_cpu_training_is_unchanged():
    import torch

    from detection.train import resolve_device, train_model
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 4, 64)
    a = train_model(x, y, num_classes=4, epochs=1, seed=3)
    b = train_model(x, y, num_classes=4, epochs=1, seed=3, device="auto")
    same = all(torch.equal(a.checkpoints[0].state[k], b.checkpoints[0].state[k].cpu())
               for k in a.checkpoints[0].state)
    assert same or torch.cuda.is_available()  # bit for bit on the CPU
    assert all(v.device.type == "cpu" for v in b.checkpoints[0].state.values())
    assert next(b.model.parameters()).device.type == "cpu"  # scoring runs on the CPU either way


def test_training_records_each_items_margin_at_every_visit():
    """visit_margin (N, epochs): the label's logit minus the largest other one, as training saw
    it; items given a wrong label end with a lower mean margin (the area under the margin)."""
    import numpy as np
    from detection.noise import inject_label_noise
    from detection.sources import load_source
    from detection.train import train_model
    d = load_source("digits", limit=400, seed=0)
    y, fault = inject_label_noise(d.y, rate=0.1, kind="symmetric", num_classes=10, seed=0)
    r = train_model(d.x, y, num_classes=10, epochs=3, seed=0)
    assert r.visit_margin.shape == (400, 3) and np.isfinite(r.visit_margin).all()
    from detection.metrics import ranking_report
    assert ranking_report(-r.visit_margin.mean(1), fault)["auroc"] > 0.8


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_models_keep_channels_last_weights_and_predict_as_the_plain_layout_does(shape):
    """``build_model`` puts convolution weights in channels-last layout (faster CPU kernels); a
    copy in the plain layout with the same weights gives the same outputs to float rounding, and
    a state loaded into a fresh model keeps the fast layout."""
    import torch

    torch.manual_seed(0)
    model = build_model(shape, 10).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    plain = build_model(shape, 10)
    plain.load_state_dict(model.state_dict())
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    plain = plain.to(memory_format=torch.contiguous_format).eval()
    assert not all(m.weight.is_contiguous(memory_format=torch.channels_last)
                   for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    x = np.random.default_rng(0).random((64, *shape), dtype=np.float32)
    (a_logits, a_feats), (b_logits, b_feats) = predict(model, x), predict(plain, x)
    np.testing.assert_allclose(a_logits, b_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a_feats, b_feats, rtol=1e-4, atol=1e-5)
