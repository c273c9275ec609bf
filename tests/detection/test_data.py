import numpy as np
import pytest

from detection.data import decode_image, from_arrays, load_folder, to_model_input
from .conftest import write_png


def make_folder(root, *, color=False, size=28, per_class=3, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(per_class):
            shape = (size, size, 3) if color else (size, size)
            write_png(root / c / f"{i}.png", rng.integers(0, 255, shape))


def test_gray_folder_loads_as_1x28x28_with_sorted_classes(tmp_path):
    make_folder(tmp_path, classes=("b", "a"))
    d = load_folder(tmp_path)
    assert d.x.shape == (6, 1, 28, 28) and d.x.dtype == np.float32
    assert d.classes == ["a", "b"]
    assert d.paths[0] == "a/0.png" and list(d.y) == [0, 0, 0, 1, 1, 1]
    assert 0.0 <= d.x.min() and d.x.max() <= 1.0


def test_color_folder_under_train_resized_to_3x32x32(tmp_path):
    make_folder(tmp_path / "train", color=True, size=40)
    d = load_folder(tmp_path)
    assert d.x.shape == (6, 3, 32, 32)
    assert d.paths[0] == "train/cat/0.png"


def test_unreadable_and_non_image_files_are_skipped_with_a_warning(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "cat" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        d = load_folder(tmp_path)
    assert len(d) == 6 and d.skipped == ["cat/broken.png"]


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "at least 2"),
    (lambda p: make_folder(p, classes=("only",)), "at least 2"),
    (lambda p: [(p / c).mkdir() for c in ("a", "b")], "no image files"),
])
def test_bad_folders_raise_clear_errors(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(ValueError, match=message):
        load_folder(tmp_path)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        load_folder(tmp_path / "nope")


def test_from_arrays_accepts_uint8_gray_and_color():
    gray = from_arrays(np.full((4, 8, 8), 255, np.uint8), np.array([0, 1, 0, 1]))
    assert gray.x.shape == (4, 1, 28, 28) and np.allclose(gray.x, 1.0)
    color = from_arrays(np.zeros((3, 32, 32, 3), np.uint8), np.array([0, 1, 2]))
    assert color.x.shape == (3, 3, 32, 32) and color.num_classes == 3


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((4, 8)), np.zeros(4, int), "shape"),
    (np.zeros((4, 8, 8)), np.zeros(3, int), "labels must have shape"),
    (np.zeros((4, 8, 8)), np.array([0, 1, 2, 0.5]), "integers"),
    (np.zeros((2, 8, 8)), np.array([0, 0]), "at least 2 classes"),
])
def test_from_arrays_rejects_bad_input(images, labels, message):
    with pytest.raises(ValueError, match=message):
        from_arrays(images, labels)


def test_decode_image_round_trip_and_error(tmp_path):
    write_png(tmp_path / "a.png", np.full((10, 10), 128))
    arr = decode_image((tmp_path / "a.png").read_bytes(), channels=1, size=28)
    assert arr.shape == (1, 28, 28) and abs(arr.mean() - 128 / 255) < 1e-2
    with pytest.raises(ValueError, match="not a readable image"):
        decode_image(b"garbage", channels=1, size=28)


def test_to_model_input_infers_color_from_modes():
    from PIL import Image
    imgs = [Image.new("L", (5, 5)), Image.new("RGB", (5, 5))]
    assert to_model_input(imgs).shape == (2, 3, 32, 32)
    assert to_model_input(imgs[:1]).shape == (1, 1, 28, 28)
