"""Configuration from the environment or a `.env` file in the working directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from dotenv import load_dotenv

_loaded = False

# The seed's thresholds: environment name -> (drift.settings key, default).
THRESHOLD_SETTINGS: dict[str, tuple[str, str]] = {
    "EMBEDDING_DRIFT_THRESHOLD": ("embedding_drift_threshold", "0.15"),
    "REFUSAL_RATE_THRESHOLD": ("refusal_rate_threshold", "0.05"),
    "TOXICITY_RATE_THRESHOLD": ("toxicity_rate_threshold", "0.02"),
    "ACCURACY_DROP_THRESHOLD": ("accuracy_drop_threshold", "0.05"),
}


def load_env() -> None:
    """Read `.env` once; variables already set in the environment win."""
    global _loaded
    if not _loaded:
        load_dotenv(Path.cwd() / ".env", override=False)
        _loaded = True


def env(name: str, default: str | None = None) -> str | None:
    load_env()
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def driftloop_home() -> Path:
    """Where the embedded database and other local state live."""
    return Path(env("DRIFTLOOP_HOME") or platformdirs.user_data_dir("driftloop"))


@dataclass(frozen=True)
class ThresholdOverride:
    key: str
    value: float


def threshold_overrides() -> list[ThresholdOverride]:
    """Thresholds set in the environment, validated, as drift.settings rows."""
    out = []
    for name, (key, _default) in THRESHOLD_SETTINGS.items():
        raw = env(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None
        if not 0 <= value <= 1:
            raise ValueError(f"{name}={raw!r} must be between 0 and 1")
        out.append(ThresholdOverride(key, value))
    return out
