"""Typed settings from TOML tables: unknown keys, missing keys and wrong types are errors.

Every table of `driftloop.toml` (`[worker]`, `[actions.NAME]`) is read into a frozen
dataclass through `parse_table`, so a typo is reported at start with the file and the
entry, never discovered at the first drift event.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from driftloop.errors import DriftloopError

T = TypeVar("T")


class ConfigError(DriftloopError):
    """The worker configuration is invalid; the message names the file and the entry."""


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_describe(typing.get_args(tp)[1])}"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
        item_type = typing.get_args(tp)[0]
        return tuple(_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
        item_type = typing.get_args(tp)[1]
        return {str(k): _convert(v, item_type, f"{where}.{k}") for k, v in value.items()}
    # bool is an int in Python; TOML keeps them apart and so do we.
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")


def parse_table(cls: type[T], table: dict[str, Any], where: str) -> T:
    """Build the dataclass `cls` from a TOML table; `where` prefixes every message."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known keys: {known})")
    values = {}
    for name, field in fields.items():
        if name in table:
            values[name] = _convert(table[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    return cls(**values)
