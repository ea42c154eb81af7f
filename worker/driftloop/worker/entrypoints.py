"""`module:function` references in the configuration (trainers, embedders)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from driftloop.worker.tables import ConfigError


def resolve(reference: str, where: str) -> Callable[..., Any]:
    """Import `module:function`; a clear ConfigError when it cannot be found."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{where} must look like 'package.module:function', got {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"{where}: {module_name!r} has no attribute {attr!r}")
    if not callable(target):
        raise ConfigError(f"{where}: {reference!r} is not callable")
    return target  # type: ignore[no-any-return]
