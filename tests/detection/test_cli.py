import csv
import subprocess
import sys
from pathlib import Path

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


def test_rank_cli_bad_folder_is_a_one_line_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "detection", "rank", str(tmp_path), "--out", str(tmp_path / "s.csv")],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error:") and "Traceback" not in res.stderr
