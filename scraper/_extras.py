"""The optional extras: which module each needs, and the one line that says how to install it.

The distribution is ``wpchat-scraper`` (the import package stays ``scraper``); a missing extra is a
:class:`~scraper.errors.MissingExtraError` whose message is the pip command, never a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal

from .errors import MissingExtraError

__all__ = ["DIST", "Extra", "import_extra", "install_hint"]

DIST = "wpchat-scraper"
Extra = Literal["serve", "stealth", "direct", "redis"]
WHAT: dict[Extra, str] = {
    "serve": "`scraper serve` needs Starlette and uvicorn",
    "stealth": "the patchright driver needs patchright",
    "direct": "the direct client needs aiohttp",
    "redis": "shared state in Redis (--state redis://...) needs redis-py",
}


def install_hint(extra: Extra) -> str:
    """``pip install 'wpchat-scraper[extra]'``."""
    return f"pip install '{DIST}[{extra}]'"


def import_extra(module: str, extra: Extra) -> ModuleType:
    """Import ``module`` of an optional extra, or raise one clear error naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the extra is there but something inside it is broken: that is not ours to hide
        raise MissingExtraError(f"{WHAT[extra]}: {install_hint(extra)}", extra=extra) from None
