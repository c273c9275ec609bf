import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import write_png

ROOT = Path(__file__).resolve().parents[2]


def test_rank_cli_end_to_end(tmp_path):
    data = tmp_path / "data"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_noisy_dataset.py"), "--source", "digits",
                    "--out", str(data), "--noise", "0.1", "--kind", "symmetric", "--limit", "300", "--seed", "1"],
                   check=True, capture_output=True)
    (data / "train" / "3" / "junk.png").write_text("not an image")
    out = tmp_path / "scores.csv"
    res = subprocess.run([sys.executable, "-m", "detection", "rank", str(data), "--out", str(out), "--method",
                          "loss", "--epochs", "6", "--grid", str(tmp_path / "top.png"), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "1 unreadable skipped" in res.stdout
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 300 and list(rows[0]) == ["path", "label", "score"]
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    truth = {r["path"]: r["is_fault"] == "1" for r in csv.DictReader(open(data / "truth.csv"))}
    found = sum(truth[r["path"]] for r in rows[:30])
    assert found >= 12     # 30 faults among 300: chance would find about 3
    assert (tmp_path / "top.png").stat().st_size > 1000


HEAVY = {"torch", "torchvision", "sklearn"}


def run_cli_counting_imports(*args):
    """``python -X importtime -m detection rank ...``: the result, its last stderr line and the
    top-level packages imported (``-X importtime`` lists every import on stderr)."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "detection", "rank", *map(str, args)],
                         cwd=ROOT, capture_output=True, text=True)
    lines = res.stderr.splitlines()
    imported = {ln.rsplit("|", 1)[-1].strip().split(".")[0] for ln in lines if ln.startswith("import time:")}
    messages = [ln for ln in lines if not ln.startswith("import time:")]
    return res, messages, imported


def test_rank_cli_bad_folder_is_a_one_line_error(tmp_path):
    res, messages, imported = run_cli_counting_imports(tmp_path, "--out", tmp_path / "s.csv")
    assert res.returncode == 2 and len(messages) == 1 and messages[0].startswith("error:")
    assert "sub-folder per class" in messages[0]
    assert "numpy" in imported and not imported & HEAVY   # the listing ran; torch & co. did not load


def bad_call(case: str, tmp: Path) -> tuple[list, str]:
    """CLI arguments of one bad call (after ``rank``) and a phrase its error must contain."""
    good = tmp / "good"
    write_png(good / "a" / "1.png", np.zeros((4, 4)))
    write_png(good / "b" / "2.png", np.full((4, 4), 255))
    (tmp / "file.txt").write_text("x")
    out = ["--out", tmp / "s.csv"]
    if case == "one class":
        write_png(tmp / "one" / "only" / "1.png", np.zeros((4, 4)))
    if case == "no images":
        (tmp / "empty" / "a").mkdir(parents=True)
        (tmp / "empty" / "b").mkdir()
        (tmp / "empty" / "b" / "notes.txt").write_text("no image")
    return {
        "missing folder": ([tmp / "nope", *out], "is not a folder"),
        "one class": ([tmp / "one", *out], "at least 2"),
        "no images": ([tmp / "empty", *out], "no image files"),
        "out is a folder": ([good, "--out", tmp], "--out"),
        "out under a file": ([good, "--out", tmp / "file.txt" / "s.csv"], "file.txt is not a folder"),
        "grid is a folder": ([good, *out, "--grid", tmp], "--grid"),
        "zero epochs": ([good, *out, "--epochs", "0"], "--epochs"),
        "zero top": ([good, *out, "--top", "0"], "--top"),
    }[case]


@pytest.mark.parametrize("case", ["missing folder", "one class", "no images", "out is a folder",
                                  "out under a file", "grid is a folder", "zero epochs", "zero top"])
def test_bad_arguments_are_refused_before_torch_is_imported(tmp_path, case):
    args, expected = bad_call(case, tmp_path)
    res, messages, imported = run_cli_counting_imports(*args)
    assert res.returncode == 2, res.stderr[-500:]
    assert len(messages) == 1 and messages[0].startswith("error:") and expected in messages[0], messages
    assert not imported & HEAVY, sorted(imported & HEAVY)
    assert not (tmp_path / "s.csv").exists()


def test_unknown_method_is_refused_by_argparse_before_torch(tmp_path):
    res, messages, imported = run_cli_counting_imports(tmp_path, "--out", tmp_path / "s.csv", "--method", "x")
    assert res.returncode == 2 and "invalid choice" in res.stderr and not imported & HEAVY


def test_package_import_is_light():
    """``import detection`` (and the CLI module) load none of the heavy libraries."""
    res = subprocess.run([sys.executable, "-c", "import sys, detection, detection.cli; "
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                          "{'torch', 'torchvision', 'sklearn'}))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
