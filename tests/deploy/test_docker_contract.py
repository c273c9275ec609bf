"""Static checks of the Docker deployment: Dockerfile, docker-compose.yml, .env.example, .dockerignore.

No Docker engine is needed: the files are parsed and held to the contract of docs/docker.md and
the label-studio-ml-backend conventions (non-root user, /health check, port 9090, MODEL_DIR on a
volume, gunicorn flags, dependencies before code, one requirements file). Environment names are
checked against what the code reads *now* (backend/config.py is asked, not copied), so renaming a
setting in the backend without the deployment fails here. The image itself is built and started
by .ci/docker_build_check.sh (its host-side checks: image_probe.py, tested in test_image_probe.py).
"""
from __future__ import annotations

import http.server
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import yaml  # PyYAML (requirements-dev.txt; a missing one must fail here, not skip)

ROOT = Path(__file__).resolve().parents[2]
LS_IMAGE = re.compile(r"^heartexlabs/label-studio:1\.23\.\d+$")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Settings read by Label Studio 1.23.2 (label_studio/core/settings/base.py and server.py of the
#: label-studio 1.23.2 wheel; LABEL_STUDIO_ is one of its accepted prefixes). Only these may be set
#: on the label-studio service, so a misspelt name (silently ignored by Label Studio) fails here.
LS_SETTINGS = {
    "LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN",
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN", "ML_BLOCK_LOCAL_IP", "SSRF_PROTECTION_ENABLED",
    "LOCAL_FILES_SERVING_ENABLED", "LOCAL_FILES_DOCUMENT_ROOT", "LABEL_STUDIO_HOST",
    "CSRF_TRUSTED_ORIGINS", "ALLOWED_HOSTS", "DISABLE_SIGNUP_WITHOUT_LINK",
    # its database (label_studio/core/settings/base.py): DJANGO_DB=default is PostgreSQL
    "DJANGO_DB", "POSTGRE_NAME", "POSTGRE_USER", "POSTGRE_PASSWORD", "POSTGRE_HOST", "POSTGRE_PORT",
    # a feature flag of label_studio/feature_flags.json, set from the environment
    "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short",
}
#: Variables the image sets for Python and pip themselves, not for the backend.
RUNTIME_PREFIXES = ("PYTHON", "PIP_")


# --- parsing ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comments and blank lines dropped."""
    out: list[Instruction] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not buf and not line):
            continue
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buf = ""
    assert not buf, "Dockerfile ends inside a continued line"
    return out


def env_pairs(args: str) -> dict[str, str]:
    """``ENV A=1 B="x y"`` -> {"A": "1", "B": "x y"} (the key=value form only)."""
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        assert sep, f"ENV uses the legacy 'ENV key value' form: {args!r}"
        pairs[key] = value
    return pairs


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def image_env(dockerfile) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in dockerfile:
        if ins.keyword == "ENV":
            env.update(env_pairs(ins.args))
    return env


@pytest.fixture(scope="module")
def build_args(dockerfile) -> dict[str, str]:
    return {name: value for ins in dockerfile if ins.keyword == "ARG"
            for name, _, value in [ins.args.partition("=")]}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def service_env(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict((item.split("=", 1) + [None])[:2] for item in env)
    return env


def mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, options) of every short-syntax volume of a service."""
    out = []
    for item in service.get("volumes") or []:
        assert isinstance(item, str), f"use the short volume syntax: {item!r}"
        source, target, *opts = item.rsplit(":", 2) if item.count(":") >= 2 else item.split(":")
        out.append((source, target, opts[0] if opts else ""))
    return out


def cmd_argv(dockerfile) -> list[str]:
    cmds = [ins for ins in dockerfile if ins.keyword == "CMD"]
    assert len(cmds) == 1, "exactly one CMD"
    import json
    argv = json.loads(cmds[0].args)
    assert argv[:2] == ["sh", "-c"], "CMD must be the exec form ['sh', '-c', '...'] (env expansion)"
    return argv


def gunicorn_words(dockerfile) -> list[str]:
    words = shlex.split(cmd_argv(dockerfile)[2])
    assert words[:2] == ["exec", "gunicorn"], "exec gunicorn, so that it is PID 1 and gets signals"
    return words[1:]


def referenced_vars(text: str) -> set[str]:
    return set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text))


# --- what the code reads ------------------------------------------------------------------------------
class _Recorder(dict):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def get(self, key, default=None):
        self.names.add(key)
        return default

    def __getitem__(self, key):
        self.names.add(key)
        raise KeyError(key)

    def __contains__(self, key):
        self.names.add(key)
        return False


_LITERAL_ENV = re.compile(
    r"""(?:environ\.get|getenv|environ\.setdefault|environ\[|\w*env\w*\()\s*\(?\s*["']([A-Z][A-Z0-9_]*)["']""")


def literal_env_names(paths) -> set[str]:
    names: set[str] = set()
    for path in paths:
        names |= set(_LITERAL_ENV.findall(path.read_text(encoding="utf-8")))
    return names


@pytest.fixture(scope="module")
def backend_env_names() -> set[str]:
    """Every environment name the backend reads: Config.from_env asked with a recording mapping,
    plus literal os.environ/getenv look-ups anywhere in backend/."""
    config_py = ROOT / "backend" / "config.py"
    assert config_py.exists(), "backend/config.py is where the backend reads its settings"
    spec = importlib.util.spec_from_file_location("_backend_config_for_deploy_test", config_py)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building the class
    try:
        spec.loader.exec_module(module)
        recorder = _Recorder()
        module.Config.from_env(recorder)
    finally:
        sys.modules.pop(spec.name, None)
    names = recorder.names | literal_env_names((ROOT / "backend").rglob("*.py"))
    assert names, "found no environment names in backend/"
    return names


# --- Dockerfile ------------------------------------------------------------------------------------------
def test_base_image_is_python_311_slim(dockerfile):
    froms = [ins.args for ins in dockerfile if ins.keyword == "FROM"]
    assert froms == ["python:3.11-slim"]


def test_runs_as_non_root_user(dockerfile):
    users = [ins for ins in dockerfile if ins.keyword == "USER"]
    assert users, "no USER: the backend would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1].args} is root"
    cmd_line = next(ins.line for ins in dockerfile if ins.keyword == "CMD")
    assert users[-1].line < cmd_line
    # The user exists and owns the model directory it must write to.
    run_text = " ".join(ins.args for ins in dockerfile if ins.keyword == "RUN")
    made = rf"useradd\b[^&;]*--uid {user}\b" if user.isdigit() else rf"useradd\b[^&;]*\b{user}\b"
    assert re.search(made, run_text), f"no useradd creates user {user}"
    assert re.search(r"chown\s+\S+\s+/data/models", run_text)


def test_healthcheck_calls_health_with_python(dockerfile, image_env):
    checks = [ins for ins in dockerfile if ins.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    args = checks[0].args
    assert "/health" in args
    assert not re.search(r"\b(curl|wget)\b", args), "python:3.11-slim has neither curl nor wget"
    timeout = re.search(r"--timeout=(\d+)s", args)
    assert timeout and int(timeout[1]) <= 10


def _healthcheck_argv(dockerfile) -> list[str]:
    import json
    args = next(ins.args for ins in dockerfile if ins.keyword == "HEALTHCHECK")
    return json.loads(args[args.index("CMD ") + 4:])


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_healthcheck_command_works_against_a_server(dockerfile, status, healthy):
    """The HEALTHCHECK command itself, run against a server on the loopback address."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code = status if self.path == "/health" else 404
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b'{"status": "UP"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        argv = _healthcheck_argv(dockerfile)
        assert argv[0] == "python"
        env = dict(os.environ, PORT=str(server.server_address[1]))
        proc = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30)
        assert (proc.returncode == 0) == healthy, proc.stderr.decode()
    finally:
        server.shutdown()
        server.server_close()


def test_port_9090(dockerfile, image_env):
    exposed = [ins.args for ins in dockerfile if ins.keyword == "EXPOSE"]
    assert exposed == ["9090"]
    assert image_env["PORT"] == "9090"


def test_model_dir_is_a_volume(dockerfile, image_env):
    assert image_env["MODEL_DIR"] == "/data/models"
    volumes = [ins.args for ins in dockerfile if ins.keyword == "VOLUME"]
    assert volumes in (['["/data/models"]'], ["/data/models"])


def test_gunicorn_command(dockerfile, image_env):
    words = gunicorn_words(dockerfile)
    assert words[0] == "gunicorn"
    assert "--preload" in words
    opts = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}
    assert opts["--bind"] == ":${PORT}"
    assert opts["--workers"] == "${WORKERS}"
    assert opts["--threads"] == "${THREADS}"
    assert opts["--timeout"] == "0"
    assert words[-1] == "backend.wsgi:app"
    assert image_env["WORKERS"] == "1" and image_env["THREADS"] == "8"
    # Every variable the command uses has a default in the image.
    assert referenced_vars(cmd_argv(dockerfile)[2]) <= set(image_env)


def test_wsgi_entry_exists():
    wsgi = ROOT / "backend" / "wsgi.py"
    assert wsgi.exists(), "the Dockerfile runs backend.wsgi:app"
    assert re.search(r"^app\s*=", wsgi.read_text(encoding="utf-8"), re.M)


def _pip_runs(dockerfile) -> list[Instruction]:
    return [ins for ins in dockerfile if ins.keyword == "RUN" and re.search(r"\bpip install\b", ins.args)]


def test_dependencies_are_installed_before_the_code_is_copied(dockerfile):
    runs = _pip_runs(dockerfile)
    assert len(runs) == 2, "one pip step for torch/torchvision, one for requirements.txt"
    torch_run, req_run = runs
    assert "-r requirements.txt" in req_run.args
    assert "torch==" in torch_run.args and "-r " not in torch_run.args
    copies = [ins for ins in dockerfile if ins.keyword == "COPY"]
    copy_req = [c for c in copies if c.args.split()[0] == "requirements.txt"]
    assert len(copy_req) == 1 and copy_req[0].line < req_run.line
    assert torch_run.line < req_run.line, "torch first, so requirements.txt finds its pins satisfied"
    code_copies = [c for c in copies if c is not copy_req[0]]
    assert code_copies, "the code is never copied"
    assert all(c.line > req_run.line for c in code_copies), "code copied before dependencies"
    assert {c.args.split()[0].rstrip("/") for c in code_copies} >= {"backend", "detection"}
    for c in copies:
        assert (ROOT / c.args.split()[0]).exists(), f"COPY source missing: {c.args}"


def test_torch_comes_from_the_cpu_index_by_default(dockerfile, build_args):
    assert build_args["TORCH_INDEX_URL"] == CPU_INDEX
    torch_run = _pip_runs(dockerfile)[0].args
    assert re.search(r'--index-url\s+"?\$\{?TORCH_INDEX_URL\}?"?', torch_run)
    assert "--extra-index-url" not in torch_run  # would let a CUDA wheel from PyPI win


def test_same_requirements_file_and_torch_pins(dockerfile, build_args):
    req = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", req, re.M))
    assert pins.keys() == {"torch", "torchvision"}, "requirements.txt must pin torch and torchvision"
    assert build_args["TORCH_VERSION"] == pins["torch"]
    assert build_args["TORCHVISION_VERSION"] == pins["torchvision"]
    torch_run = _pip_runs(dockerfile)[0].args
    assert '"torch==${TORCH_VERSION}"' in torch_run
    assert '"torchvision==${TORCHVISION_VERSION}"' in torch_run
    every_run = " ".join(ins.args for ins in _pip_runs(dockerfile))
    assert "requirements-dev" not in every_run
    for tool in ("pytest", "responses", "cleanlab"):  # test tools stay out of the image
        assert not re.search(rf"^{tool}\b", req, re.M | re.I), f"{tool} in requirements.txt"


# --- .dockerignore ------------------------------------------------------------------------------------
def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("name", [".venv", ".venv-ls", ".git", ".env", "models", "model_dir",
                                  "data", "demo-data", ".demo", "benchmark", "local-files"])
def test_dockerignore_excludes(name):
    import fnmatch
    patterns = [p for p in _dockerignore() if not p.startswith("!")]
    assert any(fnmatch.fnmatch(name, p.rstrip("/")) for p in patterns), f"{name} in the build context"


def test_dockerignore_keeps_what_the_image_copies(dockerfile):
    import fnmatch
    patterns = [p.rstrip("/") for p in _dockerignore() if not p.startswith("!")]
    for ins in dockerfile:
        if ins.keyword == "COPY":
            source = ins.args.split()[0].rstrip("/")
            assert not any(fnmatch.fnmatch(source, p) for p in patterns), f"{source} is ignored"


# --- docker-compose.yml ------------------------------------------------------------------------------------
def test_label_studio_is_the_pinned_official_image(services):
    assert LS_IMAGE.match(services["label-studio"]["image"]), services["label-studio"]["image"]


def test_label_studio_data_on_a_named_volume(compose, services):
    targets = {target: source for source, target, _ in mounts(services["label-studio"])}
    source = targets.get("/label-studio/data")
    assert source and "/" not in source, "Label Studio's data must be on a named volume"
    assert source in (compose.get("volumes") or {})


def test_label_studio_settings_for_a_backend_on_the_compose_network(services):
    env = service_env(services["label-studio"])
    unknown = set(env) - LS_SETTINGS
    assert not unknown, f"not Label Studio 1.23 settings: {sorted(unknown)}"
    assert env["ML_BLOCK_LOCAL_IP"] == "false"
    assert env["SSRF_PROTECTION_ENABLED"] == "false"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_USER_TOKEN"].startswith("${LABEL_STUDIO_API_KEY")


def test_label_studio_runs_with_the_settings_the_scripts_and_benchmarks_use(services):
    from scripts.servers import LABEL_STUDIO_TUNING
    env = service_env(services["label-studio"])
    assert {k: env.get(k) for k in LABEL_STUDIO_TUNING} == LABEL_STUDIO_TUNING


def test_label_studio_runs_on_the_postgres_service_with_its_own_volume(services):
    env = service_env(services["label-studio"])
    assert env["DJANGO_DB"] == "default" and env["POSTGRE_HOST"] == "postgres"
    pg = services["postgres"]
    pg_env = service_env(pg)
    assert (env["POSTGRE_NAME"], env["POSTGRE_USER"]) == (pg_env["POSTGRES_DB"], pg_env["POSTGRES_USER"])
    assert env["POSTGRE_PASSWORD"] == pg_env["POSTGRES_PASSWORD"]
    assert ("postgres-data", "/var/lib/postgresql/data") in {(a, b) for a, b, _ in mounts(pg)}
    assert services["label-studio"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_backend_reads_label_studio_media_directly_read_only(services):
    ls, backend = services["label-studio"], services["ml-backend"]
    env = service_env(backend)
    backend_mounts = {tgt: (src, mode) for src, tgt, mode in mounts(backend)}
    ls_mounts = {src: tgt for src, tgt, _ in mounts(ls)}
    media = env["LABEL_STUDIO_MEDIA_ROOT"]
    src, mode = backend_mounts[media]
    assert mode == "ro" and ls_mounts[src] == "/label-studio/data/media"  # the same volume
    files = env["LOCAL_FILES_DOCUMENT_ROOT"]
    src, mode = backend_mounts[files]
    assert mode == "ro" and ls_mounts[src] == service_env(ls)["LOCAL_FILES_DOCUMENT_ROOT"]


def test_local_files_root_is_the_mounted_folder(services):
    env = service_env(services["label-studio"])
    root = env["LOCAL_FILES_DOCUMENT_ROOT"]
    ls_mount = [m for m in mounts(services["label-studio"]) if m[1] == root]
    assert ls_mount and ls_mount[0][2] == "ro", "the local-files folder is mounted read-only"
    assert "LOCAL_FILES_SERVING_ENABLED" in env
    # The profile's importer sees the folder at the same path as Label Studio does.
    profiled = [s for s in services.values() if "local-files" in (s.get("profiles") or [])]
    assert len(profiled) == 1
    importer = profiled[0]
    assert (ls_mount[0][0], root) in {(src, tgt) for src, tgt, _ in mounts(importer)}
    assert service_env(importer)["LOCAL_FILES_DOCUMENT_ROOT"] == root
    assert "--storage" in importer["entrypoint"]
    assert importer["entrypoint"][importer["entrypoint"].index("--storage") + 1] == "local"


def test_backend_service(services):
    backend = services["ml-backend"]
    build = backend["build"]
    assert build["context"] == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile"
    env = service_env(backend)
    assert env["LABEL_STUDIO_URL"] == "http://label-studio:8080"
    assert env["MODEL_DIR"] == "/data/models"
    assert env["PORT"] == "9090"
    assert any(p.endswith(":9090") for p in backend["ports"])
    targets = {target: source for source, target, _ in mounts(backend)}
    assert "/data/models" in targets and "/" not in targets["/data/models"]
    assert backend.get("depends_on") and "label-studio" in backend["depends_on"]


def _with_defaults(text: str, env: dict[str, str]) -> str:
    """Compose interpolation of ``${NAME:-default}`` / ``${NAME}`` against ``env``."""
    def one(m: re.Match) -> str:
        name, default = m[1], m[3] or ""
        return env.get(name) or default
    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(:-([^}]*))?\}", one, text)


@pytest.mark.parametrize("env, host_ip", [({}, "127.0.0.1"),
                                          ({"ML_BACKEND_BIND": "0.0.0.0"}, "0.0.0.0")])
def test_backend_port_is_published_on_loopback_unless_asked(services, env, host_ip):
    """/setup, /predict and /webhook answer anyone who connects: by default only this host can
    (Label Studio uses the compose network); ML_BACKEND_BIND publishes it further."""
    ports = services["ml-backend"]["ports"]
    assert len(ports) == 1 and isinstance(ports[0], str), ports
    published = _with_defaults(ports[0], env)
    assert published.count(":") == 2, f"{ports[0]!r} does not name the host address"
    assert published.split(":")[0] == host_ip and published.endswith(":9090")


def test_docs_say_to_set_basic_auth_when_the_port_is_reachable():
    for doc in ("README.md", "docs/docker.md", ".env.example"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert "ML_BACKEND_BIND" in text, f"{doc} does not say how the backend port is published"
        at = text.index("ML_BACKEND_BIND")
        near = text[max(0, at - 400):at + 600]
        assert "BASIC_AUTH_USER" in near, f"{doc}: say to set basic auth next to ML_BACKEND_BIND"


@pytest.mark.parametrize("name", ["label-studio", "ml-backend"])
def test_restart_policy(services, name):
    assert services[name]["restart"] in ("unless-stopped", "always")


def test_secrets_come_from_env_file(services):
    env = service_env(services["ml-backend"])
    for name in ("LABEL_STUDIO_API_KEY", "BASIC_AUTH_USER", "BASIC_AUTH_PASS"):
        value = env[name]
        assert value is None or value.startswith("${" + name), f"{name} must come from .env"
    ls_env = service_env(services["label-studio"])
    assert ls_env["LABEL_STUDIO_PASSWORD"].startswith("${LABEL_STUDIO_PASSWORD")


def test_env_file_is_not_committed():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored
    assert not (ROOT / ".env").exists() or _is_untracked(".env")


def _is_untracked(path: str) -> bool:
    proc = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=ROOT,
                          capture_output=True)
    return proc.returncode != 0


# --- names: compose and Dockerfile against the code ----------------------------------------------------------
def test_backend_reads_the_documented_settings(backend_env_names):
    documented = {"MODEL_DIR", "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "BASIC_AUTH_USER",
                  "BASIC_AUTH_PASS", "LOG_LEVEL", "DETECTION_METHOD"}
    assert documented <= backend_env_names, sorted(documented - backend_env_names)


def test_image_env_names_are_read_by_the_backend(dockerfile, image_env, backend_env_names):
    used_by_command = referenced_vars(cmd_argv(dockerfile)[2])
    for ins in dockerfile:
        if ins.keyword == "HEALTHCHECK":
            used_by_command |= set(re.findall(r"environ\.get\('([A-Z_]+)'", ins.args))
    stray = {name for name in image_env
             if name not in backend_env_names | used_by_command and not name.startswith(RUNTIME_PREFIXES)}
    assert not stray, f"the image sets variables nothing reads: {sorted(stray)}"


def test_compose_backend_env_names_are_read_by_the_backend(dockerfile, services, backend_env_names):
    used_by_command = referenced_vars(cmd_argv(dockerfile)[2])
    names = set(service_env(services["ml-backend"]))
    stray = names - backend_env_names - used_by_command
    assert not stray, f"ml-backend gets variables the backend never reads: {sorted(stray)}"


def test_compose_importer_env_names_are_read_by_the_import_script(services):
    script_names = literal_env_names([ROOT / "scripts" / "import_folder.py"])
    names = set(service_env(services["import-local"]))
    assert names <= script_names, sorted(names - script_names)


def test_env_example_has_every_variable_compose_uses():
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    text = text.replace("$$", "")  # $$ is a literal dollar, not interpolation
    interpolated = referenced_vars(text)
    compose = yaml.safe_load(text)
    propagated = {name for svc in compose["services"].values()
                  for name, value in service_env(svc).items() if value is None}
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.M))
    missing = (interpolated | propagated) - listed
    assert not missing, f".env.example does not mention {sorted(missing)}"


def test_env_example_carries_no_secret():
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    values = dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", example, re.M))
    for name in ("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_PASSWORD"):
        assert values.get(name, "") == "", f"{name} must be empty in .env.example"
    assert not re.search(r"^BASIC_AUTH_PASS=.+", example, re.M)


def test_required_values_make_compose_refuse_an_unfilled_env(services):
    """Empty secrets must stop `docker compose up` with a message, not start a broken stack."""
    for svc, name in [("label-studio", "LABEL_STUDIO_PASSWORD"), ("ml-backend", "LABEL_STUDIO_API_KEY")]:
        assert re.fullmatch(r"\$\{%s:\?[^}]+\}" % name, service_env(services[svc])[name])
