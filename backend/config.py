"""Settings of the ML backend, read once from the environment (see docs/backend.md for the table)."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

METHODS = ("dfaulo", "tracin", "loss")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Config:
    """Everything the backend can be told. Build it with ``Config.from_env()`` or ``Config(...)``."""

    model_dir: str = "models"
    label_studio_url: str = ""
    label_studio_api_key: str = ""
    basic_auth_user: str = ""
    basic_auth_pass: str = ""
    log_level: str = "INFO"
    detection_method: str = "dfaulo"
    train_epochs: int | None = None
    seed: int = 0
    verdict_batch: int = 20
    verdict_quiet_seconds: float = 5.0
    push_batch: int = 5000
    download_workers: int = 4
    max_image_bytes: int = 10 * 1024 * 1024
    download_timeout: float = 15.0
    api_timeout: float = 60.0
    predict_inline_limit: int = 100
    # Not from the environment: a class with SuspicionRanker's interface (tests and benchmarks).
    ranker_cls: Any = None

    def __post_init__(self) -> None:
        if self.detection_method not in METHODS:
            raise ValueError(f"DETECTION_METHOD must be one of {', '.join(METHODS)}, "
                             f"got {self.detection_method!r}")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise ValueError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
        if self.label_studio_url and not self.label_studio_url.startswith(("http://", "https://")):
            raise ValueError(f"LABEL_STUDIO_URL must start with http:// or https://, "
                             f"got {self.label_studio_url!r}")
        for name in ("verdict_batch", "push_batch", "download_workers", "max_image_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.upper()} must be at least 1, got {getattr(self, name)}")
        if self.verdict_quiet_seconds <= 0 or self.download_timeout <= 0 or self.api_timeout <= 0:
            raise ValueError("VERDICT_QUIET_SECONDS, DOWNLOAD_TIMEOUT and API_TIMEOUT must be positive")
        if self.train_epochs is not None and self.train_epochs < 1:
            raise ValueError(f"TRAIN_EPOCHS must be at least 1, got {self.train_epochs}")
        if self.predict_inline_limit < 0:
            raise ValueError("PREDICT_INLINE_LIMIT must be 0 or more")

    @property
    def basic_auth(self) -> bool:
        return bool(self.basic_auth_user)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Read every setting from ``environ`` (default ``os.environ``); unset ones keep defaults."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "ranker_cls":
                continue
            raw = env.get(f.name.upper())
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _parse(f.name, raw, default=f.default)
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


def _parse(name: str, raw: str, *, default: Any) -> Any:
    raw = raw.strip()
    try:
        if name in ("verdict_quiet_seconds", "download_timeout", "api_timeout"):
            return float(raw)
        if name in ("train_epochs", "seed", "verdict_batch", "push_batch", "download_workers",
                    "max_image_bytes", "predict_inline_limit"):
            return int(raw)
    except ValueError:
        raise ValueError(f"{name.upper()} must be a number, got {raw!r}") from None
    if name == "label_studio_url":
        return raw.rstrip("/")
    if name == "log_level":
        return raw.upper()
    return raw
