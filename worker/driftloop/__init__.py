"""driftloop: drift detection inside Postgres and a worker that closes the loop."""

from __future__ import annotations

from driftloop.client import Client, connect
from driftloop.errors import DriftloopError, InputError

__all__ = ["Client", "DriftloopError", "InputError", "connect"]
__version__ = "0.1.0"
