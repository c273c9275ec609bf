"""Settings of the ML backend, read once from the environment (see docs/backend.md for the table).

Each setting is declared once, as a field of ``Config``: its type says how the environment's text
is parsed (``str``, ``int``, ``float``, ``int | None``), its metadata (``setting(...)``) how the
value is normalized and checked, and its environment name is the field name in upper case.
"""
import logging
import os
import types
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping

from detection import DEVICES, METHODS

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setting(default: Any, *, choices: tuple[str, ...] | None = None, minimum: float | None = None,
            positive: bool = False, normalize: Callable[[Any], Any] | None = None,
            prefixes: tuple[str, ...] | None = None, env: bool = True) -> Any:
    """A ``Config`` field: ``default``, and how its value is normalized (``normalize``) and checked
    (one of ``choices``, at least ``minimum``, ``positive``, empty or starting with one of
    ``prefixes``). ``env=False``: not read from the environment."""
    return field(default=default, metadata={"choices": choices, "minimum": minimum, "positive": positive,
                                            "normalize": normalize, "prefixes": prefixes, "env": env})


def _upper(value: str) -> str:
    return value.upper()


def _no_trailing_slash(value: str) -> str:
    return value.rstrip("/")


@dataclass(frozen=True)
class Config:
    """Everything the backend can be told. Build it with ``Config.from_env()`` or ``Config(...)``."""

    model_dir: str = setting("models")
    label_studio_url: str = setting("", normalize=_no_trailing_slash, prefixes=("http://", "https://"))
    label_studio_api_key: str = setting("")
    basic_auth_user: str = setting("")
    basic_auth_pass: str = setting("")
    log_level: str = setting("INFO", normalize=_upper, choices=LOG_LEVELS)
    detection_method: str = setting("dfaulo", choices=METHODS)
    train_epochs: int | None = setting(None, minimum=1)
    seed: int = setting(0)
    verdict_batch: int = setting(20, minimum=1)
    verdict_quiet_seconds: float = setting(5.0, positive=True)
    push_batch: int = setting(5000, minimum=1)
    download_workers: int = setting(4, minimum=1)
    max_image_bytes: int = setting(10 * 1024 * 1024, minimum=1)
    download_timeout: float = setting(15.0, positive=True)
    api_timeout: float = setting(60.0, positive=True)
    predict_inline_limit: int = setting(100, minimum=0)
    max_image_pixels: int = setting(4096 * 4096, minimum=1)
    max_request_bytes: int = setting(32 * 1024 * 1024, minimum=1)
    max_open_projects: int = setting(32, minimum=1)
    device: str = setting("auto", choices=DEVICES)
    image_cache_bytes: int = setting(2 * 1024**3, minimum=0)
    local_files_document_root: str = setting("")
    label_studio_media_root: str = setting("")
    # Not from the environment: a class with SuspicionRanker's interface (tests and benchmarks).
    ranker_cls: Any = setting(None, env=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            normalize = f.metadata.get("normalize")
            if normalize is not None and isinstance(value, str):
                value = normalize(value)
                object.__setattr__(self, f.name, value)
            _check(f, value)
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise ValueError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")

    @property
    def basic_auth(self) -> bool:
        return bool(self.basic_auth_user)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Read every setting from ``environ`` (default ``os.environ``); unset or empty ones keep
        their defaults. ``ValueError`` names the variable and what it must be."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if not f.metadata.get("env", True):
                continue
            raw = env.get(f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            kwargs[f.name] = _parse(f.name.upper(), raw.strip(), f.type)
        return cls(**kwargs)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Config":
        """A copy with ``overrides`` (keys are field names, lower or upper case)."""
        names = {f.name for f in fields(self)}
        clean = {}
        for key, value in overrides.items():
            name = key.lower()
            if name not in names:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(sorted(names))}")
            clean[name] = value
        return replace(self, **clean)


def configure_logging(config: Config) -> None:
    """Log to stderr at ``config.log_level``: for the process entry points (``python -m backend``,
    ``backend.wsgi`` under gunicorn), never for the app factory, which a host process may embed."""
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT)
    logging.getLogger("backend").setLevel(config.log_level)


def _parse(env_name: str, raw: str, annotation: Any) -> Any:
    """Environment text -> the field's type (``X | None`` parses as ``X``)."""
    kind = _base_type(annotation)
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env_name} must be an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{env_name} must be a number, got {raw!r}") from None
    return raw


def _base_type(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def _check(f, value: Any) -> None:
    """The field's type and the checks ``setting(...)`` declared for it, on ``value``."""
    name, meta, kind = f.name.upper(), f.metadata, _base_type(f.type)
    if value is None and kind is not f.type:      # ``X | None``: None is a value
        return
    wanted = {int: (int,), float: (int, float), str: (str,)}.get(kind)
    if wanted is not None and (isinstance(value, bool) or not isinstance(value, wanted)):
        what = {int: "an integer", float: "a number", str: "a string"}[kind]
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise ValueError(f"{name} must be at least {meta['minimum']}, got {value}")
    if meta["positive"] and not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if meta["prefixes"] is not None and value and not value.startswith(meta["prefixes"]):
        raise ValueError(f"{name} must start with {' or '.join(meta['prefixes'])}, got {value!r}")
