"""Matching a received request with a recorded one, and saying what differs when nothing matches.

Values a plugin's client makes up per request (ids, timestamps, client-made session ids: the plugin's
:class:`~scraper.plugins.Volatile`) match anything; so do values recorded as ``{{any}}``. Bodies are
compared by meaning: form fields and multipart fields by name, JSON member by member, a query string
parameter by parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from ..plugins import Volatile
from ..wire import parse_form
from ._format import ANY, ExchangeData

__all__ = ["Received", "differences", "received"]

_SHORT = 40
_EMAIL_SHAPE = r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_IP_SHAPE = r"[0-9A-Fa-f:.]{3,}"
Kind = Literal["none", "form", "multipart", "json", "text"]


@dataclass
class Received:
    """A request as the replay server got it, with its origin written back as placeholders."""

    method: str
    path: str
    headers: dict[str, str]
    kind: Kind = "none"
    value: Any = None


def received(
    method: str, target: str, headers: dict[str, str], body: bytes, contract: Callable[[str], str]
) -> Received:
    """Parse a request; ``contract`` writes the server's own origin back as placeholders."""
    parts = urlsplit(target)
    path = contract((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    request = Received(method, path, headers)
    if not body:
        return request
    content_type = headers.get("content-type", "")
    text = body.decode("utf-8", "replace")
    lowered = content_type.lower()
    if "multipart/form-data" in lowered or "application/x-www-form-urlencoded" in lowered:
        fields = parse_form(content_type, body) or {}
        request.kind = "multipart" if "multipart" in lowered else "form"
        request.value = [(k, contract(v)) for k, v in fields.items()]
        if request.kind == "form":  # keep repeated fields of a urlencoded body
            request.value = [(k, contract(v)) for k, v in parse_qsl(text, keep_blank_values=True)]
        return request
    if "json" in lowered or text.lstrip()[:1] in ("{", "["):
        try:
            request.value = _contract_json(json.loads(text), contract)
            request.kind = "json"
            return request
        except ValueError:
            pass
    request.kind, request.value = "text", contract(text)
    return request


def _contract_json(value: Any, contract: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: _contract_json(v, contract) for k, v in value.items()}
    if isinstance(value, list):
        return [_contract_json(v, contract) for v in value]
    if isinstance(value, str):
        return contract(value)
    return value


def differences(exchange: ExchangeData, got: Received, volatile: Volatile) -> list[str]:
    """What differs between a recorded request and a received one (empty: they match)."""
    diffs: list[str] = []
    recorded_base, _, recorded_query = exchange["path"].partition("?")
    received_base, _, received_query = got.path.partition("?")
    if exchange["method"] != got.method or recorded_base != received_base:
        diffs.append(f"request: recorded {exchange['method']} {exchange['path']} != received {got.method} {got.path}")
    elif recorded_query or received_query:
        diffs += _field_differences(
            parse_qsl(recorded_query, keep_blank_values=True),
            parse_qsl(received_query, keep_blank_values=True),
            volatile.query_params,
            "query parameter",
        )
    request = exchange.get("request", {})
    recorded_nonce = request.get("headers", {}).get("x-wp-nonce")
    received_nonce = got.headers.get("x-wp-nonce")
    if (recorded_nonce or received_nonce) and not _same_text(recorded_nonce, received_nonce):
        diffs.append(f"header 'x-wp-nonce': recorded {_short(recorded_nonce)} != received {_short(received_nonce)}")
    kind: Kind = "none"
    recorded: Any = None
    for name in ("form", "multipart", "json", "text"):
        if name in request:
            kind, recorded = name, request[name]
            break
    if kind != got.kind:
        diffs.append(f"body: recorded {_kind_name(kind)} != received {_kind_name(got.kind)}")
    elif kind in ("form", "multipart"):
        what = "form field" if kind == "form" else "multipart field"
        diffs += _field_differences(recorded, got.value, volatile.form_fields, what, volatile)
    elif kind == "json":
        diffs += _json_differences(recorded, got.value, (), volatile)
    elif kind == "text" and not _same_text(recorded, got.value):
        diffs.append(f"body: recorded {_short(recorded)} != received {_short(got.value)}")
    return diffs


def _kind_name(kind: str) -> str:
    return {"none": "no body", "form": "a form", "multipart": "a multipart form", "json": "JSON", "text": "text"}[kind]


def _field_differences(
    recorded: Any, received_pairs: Any, ignored: frozenset[str], what: str, volatile: Volatile | None = None
) -> list[str]:
    def grouped(pairs: Any) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        for name, value in pairs:
            fields.setdefault(name, []).append(value)
        return fields

    want, got = grouped(recorded), grouped(received_pairs)
    diffs = []
    for name, values in want.items():
        if name in ignored:
            continue
        if name not in got:
            diffs.append(f"{what} {name!r}: recorded {_short(values[0])} but not received")
        elif len(values) != len(got[name]):
            diffs.append(f"{what} {name!r}: recorded {len(values)} values != received {len(got[name])}")
        else:
            for a, b in zip(values, got[name], strict=True):
                if not _same_text(a, b) and not _same_json_field(name, a, b, volatile):
                    diffs.append(f"{what} {name!r}: recorded {_short(a)} != received {_short(b)}")
                    break
    for name, values in got.items():
        if name not in want and name not in ignored:
            diffs.append(f"{what} {name!r}: received {_short(values[0])} but not recorded")
    return diffs


def _same_json_field(name: str, recorded: str, got: str, volatile: Volatile | None) -> bool:
    """A field holding JSON (AI Power's ``wpaicg_chat_history``) matches member by member, its volatile
    paths (under the field's name) taken as anything."""
    if volatile is None or not any(pattern[:1] == (name,) for pattern in volatile.json_paths):
        return False
    try:
        a, b = json.loads(recorded), json.loads(got)
    except ValueError:
        return False
    return not _json_differences(a, b, (name,), volatile)


def _json_differences(recorded: Any, got: Any, path: tuple[str | int, ...], volatile: Volatile) -> list[str]:
    if volatile.json_path(path) or recorded == ANY:
        return []
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(the whole body)"
    if isinstance(recorded, dict) and isinstance(got, dict):
        diffs = []
        for key, value in recorded.items():
            if key not in got:
                if not volatile.json_path((*path, key)):
                    diffs.append(f"JSON field {_join(where, key)!r}: recorded {_short(value)} but not received")
                continue
            diffs += _json_differences(value, got[key], (*path, key), volatile)
        for key, value in got.items():
            if key not in recorded and not volatile.json_path((*path, key)):
                diffs.append(f"JSON field {_join(where, key)!r}: received {_short(value)} but not recorded")
        return diffs
    if isinstance(recorded, list) and isinstance(got, list):
        if len(recorded) != len(got):
            return [f"JSON field {where!r}: recorded {len(recorded)} items != received {len(got)}"]
        diffs = []
        for i, (a, b) in enumerate(zip(recorded, got, strict=True)):
            diffs += _json_differences(a, b, (*path, i), volatile)
        return diffs
    if isinstance(recorded, str) and isinstance(got, str):
        same = _same_text(recorded, got)
    else:
        same = type(recorded) is type(got) and recorded == got
    return [] if same else [f"JSON field {where!r}: recorded {_short(recorded)} != received {_short(got)}"]


def _join(where: str, key: str) -> str:
    return key if where == "(the whole body)" else f"{where}.{key}"


def _same_text(recorded: str | None, got: str | None) -> bool:
    """Equal, or equal once the recorded e-mail/IP placeholders stand for any e-mail/IP (a person
    types those into a message; the replay cannot know the value that was scrubbed)."""
    if recorded == got:
        return True
    if recorded is None or got is None:
        return False
    if recorded == ANY:
        return True
    if "EMAIL_" not in recorded and "IP_" not in recorded:
        return False
    pattern = ""
    for piece in re.split(r"((?:EMAIL|IP)_\d+)", recorded):
        if piece.startswith("EMAIL_"):
            pattern += f"(?:{re.escape(piece)}|{_EMAIL_SHAPE})"
        elif piece.startswith("IP_"):
            pattern += f"(?:{re.escape(piece)}|{_IP_SHAPE})"
        else:
            pattern += re.escape(piece)
    return re.fullmatch(pattern, got, re.S) is not None


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > _SHORT:
        text = text[: _SHORT - 1] + "…"
    return repr(text)
