"""Configuration: each setting declared once on ``Config`` (type, default, checks); the
environment is parsed from the fields' types; logging is left to the process entry points."""
from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from backend.app import create_app
from backend.config import Config

ROOT = Path(__file__).resolve().parents[2]


def env_fields():
    return [f for f in dataclasses.fields(Config) if f.metadata.get("env", True)]


def test_every_documented_variable_is_a_setting_and_nothing_else():
    table = (ROOT / "docs" / "backend.md").read_text(encoding="utf-8").split("## Settings", 1)[1]
    table = table.split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", "\n".join(
        ln.split("|")[1] for ln in table.splitlines() if ln.startswith("| `"))))
    assert documented == {f.name.upper() for f in env_fields()}


def base_type(annotation):
    """``int | None`` -> ``int``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


STRING_SAMPLES = {"label_studio_url": "http://ls:8080", "log_level": "DEBUG", "detection_method": "loss",
                  "device": "cpu"}


@pytest.mark.parametrize("name", [f.name for f in env_fields()])
def test_each_variable_is_parsed_to_its_field_type(name):
    f = next(f for f in env_fields() if f.name == name)
    kind = base_type(f.type)
    text, value = {int: ("7", 7), float: ("2.5", 2.5)}.get(kind, (STRING_SAMPLES.get(name, "x"),) * 2)
    env = {name.upper(): f" {text} "}
    if name.startswith("basic_auth_"):
        env = {"BASIC_AUTH_USER": "x", "BASIC_AUTH_PASS": "x"}     # only both together
    parsed = getattr(Config.from_env(env), name)
    assert parsed == value and type(parsed) is kind


def test_number_settings_name_the_variable_and_the_type():
    with pytest.raises(ValueError, match=r"^PUSH_BATCH must be an integer, got '1e3'$"):
        Config.from_env({"PUSH_BATCH": "1e3"})
    with pytest.raises(ValueError, match=r"^API_TIMEOUT must be a number, got 'soon'$"):
        Config.from_env({"API_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match=r"^DOWNLOAD_TIMEOUT must be positive, got 0.0$"):
        Config.from_env({"DOWNLOAD_TIMEOUT": "0"})
    with pytest.raises(ValueError, match=r"^PREDICT_INLINE_LIMIT must be at least 0, got -1$"):
        Config.from_env({"PREDICT_INLINE_LIMIT": "-1"})


def test_empty_variables_keep_the_defaults_and_unset_train_epochs_is_none():
    cfg = Config.from_env({f.name.upper(): "" for f in env_fields()})
    assert cfg == Config() and cfg.train_epochs is None and cfg.verdict_batch == 20


def test_values_given_in_code_get_the_same_checks_and_normalization():
    assert Config(log_level="debug", label_studio_url="http://ls/").log_level == "DEBUG"
    assert Config(label_studio_url="http://ls/").label_studio_url == "http://ls"
    with pytest.raises(ValueError, match="VERDICT_BATCH must be an integer"):
        Config(verdict_batch="3")
    with pytest.raises(ValueError, match="VERDICT_BATCH must be an integer"):
        Config(verdict_batch=True)
    with pytest.raises(ValueError, match="SEED must be an integer"):
        Config(seed=None)
    assert Config(verdict_quiet_seconds=5).verdict_quiet_seconds == 5      # an int is a number
    with pytest.raises(ValueError, match="DETECTION_METHOD"):
        Config().with_overrides({"DETECTION_METHOD": "magic"})


def test_ranker_cls_is_not_read_from_the_environment():
    assert Config.from_env({"RANKER_CLS": "os.system"}).ranker_cls is None


def test_the_app_factory_leaves_logging_alone(tmp_path):
    root, backend = logging.getLogger(), logging.getLogger("backend")
    before = (list(root.handlers), root.level, backend.level)
    app = create_app(Config(model_dir=str(tmp_path), log_level="DEBUG"))
    try:
        assert (list(root.handlers), root.level, backend.level) == before
    finally:
        app.extensions["suspicion"].stop()


@pytest.mark.parametrize("level, shown, hidden", [("DEBUG", "debug-line", None), ("WARNING", "warn-line", "info-line")])
def test_entry_points_log_at_log_level(level, shown, hidden):
    code = ("from backend.config import Config, configure_logging; configure_logging(Config.from_env()); "
            "import logging; log = logging.getLogger('backend.x'); "
            "log.debug('debug-line'); log.info('info-line'); log.warning('warn-line')")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"LOG_LEVEL": level, "PATH": "/usr/bin:/bin"}, check=True)
    assert shown in res.stderr and "WARNING backend.x: warn-line" in res.stderr
    assert hidden is None or hidden not in res.stderr
