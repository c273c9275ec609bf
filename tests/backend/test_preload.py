"""The server imports what a first training would import lazily before it serves (torch.optim's
first optimizer imports torch._dynamo: seconds holding the GIL beside /health)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = ("import sys; import {module}; "
         "print('torch' in sys.modules, 'torch._dynamo' in sys.modules)")


def loaded_after(module: str, tmp_path) -> str:
    res = subprocess.run([sys.executable, "-c", CHECK.format(module=module)], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=300,
                         env={"MODEL_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    return res.stdout.strip()


def test_the_wsgi_entry_imports_the_first_trainings_modules_before_serving(tmp_path):
    # the pipeline alone does not import them: the preload is what does
    assert loaded_after("detection.pipeline", tmp_path) == "True False"
    assert loaded_after("backend.wsgi", tmp_path) == "True True"
