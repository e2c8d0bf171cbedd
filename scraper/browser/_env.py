"""Numbers read from the environment when used, with a clear error when one is wrong."""

from __future__ import annotations

import os
from typing import TypeVar

from ..errors import ConfigError

__all__ = ["env_number", "env_set"]

N = TypeVar("N", int, float)


def env_set(name: str) -> bool:
    """Whether ``name`` holds something other than blanks."""
    return bool(os.environ.get(name, "").strip())


def env_number(name: str, kind: type[N], minimum: N) -> N:
    """A number from the environment, read when used; ConfigError saying what is wrong otherwise."""
    raw = os.environ.get(name, "").strip()
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}; unset it or fix it."
        ) from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}.")
    return value
