"""``scraper serve``: an OpenAI-compatible HTTP API for the chat boxes, on one warm browser.

::

    scraper serve                      # http://127.0.0.1:1337/v1

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:1337/v1", api_key="unused")
    print(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]))

The app and the runner need the ``serve`` extra (``pip install 'wpchat-scraper[serve]'``: Starlette, uvicorn);
they are imported on first use, so the settings and the error shape cost the command line nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._extras import import_extra
from ._config import DEFAULT_PORT, ServeConfig, is_loopback
from ._errors import error_body

if TYPE_CHECKING:
    from ._app import ServerState, Slots, create_app
    from ._run import bind, run, uvicorn_server

_LATER = {
    "ServerState": "_app",
    "Slots": "_app",
    "create_app": "_app",
    "bind": "_run",
    "run": "_run",
    "uvicorn_server": "_run",
}

__all__ = [
    "DEFAULT_PORT",
    "ServeConfig",
    "ServerState",
    "Slots",
    "bind",
    "create_app",
    "error_body",
    "is_loopback",
    "run",
    "uvicorn_server",
]


def __getattr__(name: str) -> Any:
    if name not in _LATER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in ("starlette", "uvicorn"):
        import_extra(module, "serve")
    value = getattr(importlib.import_module(f".{_LATER[name]}", __name__), name)
    globals()[name] = value
    return value
