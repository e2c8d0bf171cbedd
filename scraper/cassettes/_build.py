"""Building a cassette from a recorded flow: secrets out, per-run values marked, origin as a placeholder.

What a plugin's requests carry that changes on every run (ids, timestamps, client-made session and
conversation ids) is the plugin's own knowledge (:attr:`scraper.plugins.Plugin.volatile`); those
values are stored as ``{{any}}`` unless they are secrets, which keep their placeholder.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..browser import ExchangeRecord, FlowRecorder, PageRecord
from ..plugins import Volatile, plugin_of_request, volatile_of
from ..wire import Scrubber, logger, secret_kind
from ._format import (
    ANY,
    FORMAT,
    FORMAT_VERSION,
    ORIGIN_PLACEHOLDERS,
    Cassette,
    CassettePage,
    ChunkData,
    ExchangeData,
    RequestData,
    ResponseData,
    is_loopback_host,
)

__all__ = ["BodyKind", "from_flow", "parse_body"]

log = logger("scraper.cassette")

# Request headers worth keeping: what the server looks at. The rest is the browser's own.
KEPT_REQUEST_HEADERS = ("content-type", "accept", "x-wp-nonce", "authorization", "proxy-authorization", "cookie")
# Response headers never kept: hop-by-hop, framing (the replay frames bodies itself), and volatile ones.
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "proxy-connection",
        "content-length",
        "content-encoding",
        "date",
        "age",
        "etag",
        "last-modified",
        "alt-svc",
        "cf-ray",
        "nel",
        "report-to",
        "server-timing",
        "x-request-id",
        "request-id",
    }
)

BodyKind = Literal["none", "form", "multipart", "json", "text"]


def parse_body(content_type: str, body: str | None, form: list[tuple[str, str]] | None = None) -> tuple[BodyKind, Any]:
    """A request body as the cassette keeps it: form pairs, multipart fields, JSON, or text."""
    if form is not None:
        return "multipart", list(form)
    if body is None or body == "":
        return "none", None
    lowered = content_type.lower()
    if "application/x-www-form-urlencoded" in lowered:
        return "form", parse_qsl(body, keep_blank_values=True)
    if "json" in lowered or body.lstrip()[:1] in ("{", "["):
        try:
            return "json", json.loads(body)
        except ValueError:
            pass
    return "text", body


def _content_type(headers: list[tuple[str, str]]) -> str:
    return next((v for k, v in headers if k.lower() == "content-type"), "")


def _relative(url: str, origin: str) -> str:
    """path?query of a URL of the recorded origin; other origins keep their full URL."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        log.warning("%s is not on the recorded origin %s; the replay will not serve it", url, origin)
        return url
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _infer_plugin(exchanges: list[ExchangeRecord]) -> str | None:
    for record in exchanges:
        plugin = plugin_of_request(record.url, record.request_body or "".join(v for _, v in record.request_form or []))
        if plugin is not None:
            return plugin.name
    return None


def _infer_message(exchanges: list[ExchangeRecord]) -> str | None:
    for record in exchanges:
        plugin = plugin_of_request(record.url, record.request_body or "".join(v for _, v in record.request_form or []))
        if plugin is None:
            continue
        kind, value = parse_body(_content_type(record.request_headers), record.request_body, record.request_form)
        if kind in ("form", "multipart"):
            for name, field_value in value:
                if name == plugin.message_field:
                    return str(field_value)
        elif kind == "json" and isinstance(value, dict) and isinstance(value.get(plugin.message_field), str):
            return str(value[plugin.message_field])
    return None


def _page_headers(scrub: Scrubber, headers: list[tuple[str, str]]) -> list[list[str]]:
    out = []
    for name, value in headers:
        if name.lower() in DROPPED_RESPONSE_HEADERS:
            continue
        if name.lower() == "content-type" and "charset" in value.lower():
            value = re.sub(r"(?i)charset=[\w-]+", "charset=UTF-8", value)  # the HTML is stored as UTF-8
        out.append([name, scrub.header(name, value)])
    return out


def from_flow(
    recorder: FlowRecorder,
    *,
    origin: str,
    name: str,
    plugin: str | None = None,
    message: str | None = None,
    provider: str | None = None,
    recorded_at: datetime.date | None = None,
) -> Cassette:
    """A scrubbed cassette from what a recorder saw (plugin and message are inferred when not given)."""
    from .. import __version__

    origin = origin.rstrip("/")
    events: list[tuple[float, PageRecord | ExchangeRecord]] = [
        *((p.at, p) for p in recorder.pages),
        *((e.at, e) for e in recorder.exchanges),
    ]
    events.sort(key=lambda item: item[0])
    plugin = plugin or _infer_plugin(recorder.exchanges)
    message = message if message is not None else _infer_message(recorder.exchanges)
    volatile = volatile_of(plugin)

    scrub = Scrubber(origin)
    parsed: dict[int, tuple[BodyKind, Any]] = {}
    for _, record in events:
        if isinstance(record, PageRecord):
            for header, value in record.headers:
                scrub.discover_header(header, value)
            scrub.discover_text(record.body)
            scrub.discover_text(html.unescape(record.body))
            continue
        scrub.discover_text(urlsplit(record.url).query)
        for header, value in record.request_headers:
            if header.lower() in KEPT_REQUEST_HEADERS:
                scrub.discover_header(header, value)
        kind, body = parsed[id(record)] = parse_body(
            _content_type(record.request_headers), record.request_body, record.request_form
        )
        if kind in ("form", "multipart"):
            scrub.discover_form(body)
        elif kind == "json":
            scrub.discover_json(body)
        else:
            scrub.discover_text(body)
        for header, value in record.response_headers:
            if header.lower() not in DROPPED_RESPONSE_HEADERS:
                scrub.discover_header(header, value)
        scrub.discover_text(record.body.decode("utf-8", "replace"))
    scrub.discover_text(message)
    _note_ids(scrub, volatile, events)
    scrub.finish()

    pages: list[CassettePage] = []
    exchanges: list[ExchangeData] = []
    flow: list[str] = []
    for _, record in events:
        if isinstance(record, PageRecord):
            pages.append(
                CassettePage(
                    path=scrub.text(_relative(record.url, origin)),
                    status=record.status,
                    headers=_page_headers(scrub, record.headers),
                    html=scrub.page(record.body),
                )
            )
            flow.append(f"page-{len(pages)}")
            continue
        exchanges.append(_exchange(scrub, volatile, record, parsed[id(record)], len(exchanges) + 1, origin))
        flow.append(f"exchange-{len(exchanges)}")

    host = urlsplit(origin).hostname
    loopback = is_loopback_host(host)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "recorded_at": (recorded_at or datetime.datetime.now(datetime.timezone.utc).date()).isoformat(),
        "recorded_against": "scraper replica (local)" if loopback else "live site",
        # A loopback site's port was a throwaway free port: leaving it out keeps re-recordings identical.
        "site_url": f"{urlsplit(origin).scheme}://{host}" if loopback else origin,
        "plugin": plugin,
        "provider": provider,
        "message": scrub.text(message) if message is not None else None,
        "scraper_version": __version__,
        "placeholders": [p for p in ORIGIN_PLACEHOLDERS if _uses(p, pages, exchanges)] + scrub.placeholders,
        "flow": flow,
    }
    return Cassette(meta=meta, pages=pages, exchanges=exchanges)


def _note_ids(scrub: Scrubber, volatile: Volatile, events: list[tuple[float, PageRecord | ExchangeRecord]]) -> None:
    """Values the site made up for this run (the plugin's ``Volatile.ids``) get stable ``ID_n`` names."""
    patterns = [re.compile(p) for p in volatile.ids]
    if not patterns:
        return
    for _, record in events:
        texts = (
            [record.body] if isinstance(record, PageRecord) else [record.url, record.body.decode("utf-8", "replace")]
        )
        for text in texts:
            for pattern in patterns:
                for match in pattern.finditer(text):
                    scrub.note(match.group(0), "ID")


def _uses(placeholder: str, pages: list[CassettePage], exchanges: list[ExchangeData]) -> bool:
    if any(placeholder in page.html or placeholder in json.dumps(page.headers) for page in pages):
        return True
    blob = json.dumps(exchanges, ensure_ascii=False)
    if placeholder in blob:
        return True
    return any(
        placeholder.encode() in base64.b64decode(c["b64"])
        for e in exchanges
        for c in e["response"]["chunks"]
        if "b64" in c
    )


def _fields(scrub: Scrubber, volatile: Volatile, pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Form fields scrubbed; values that change per run (and are no secret) as ``{{any}}``."""
    kept = scrub.form(pairs)
    return [[name, ANY if name in volatile.form_fields and not secret_kind(name) else value] for name, value in kept]


def _json(volatile: Volatile, value: Any, path: tuple[str | int, ...] = ()) -> Any:
    if volatile.json_path(path):
        return ANY
    if isinstance(value, dict):
        return {k: _json(volatile, v, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(volatile, v, (*path, i)) for i, v in enumerate(value)]
    return value


def _path(scrub: Scrubber, volatile: Volatile, url: str, origin: str) -> str:
    """The request's path and query, scrubbed, with per-run query values as ``{{any}}``."""
    relative = _relative(url, origin)
    base, sep, query = relative.partition("?")
    if not sep:
        return scrub.text(relative)
    pairs = [
        (k, ANY if k in volatile.query_params and not secret_kind(k) else scrub.field(v))
        for k, v in parse_qsl(query, keep_blank_values=True)
    ]
    return scrub.text(base) + "?" + urlencode(pairs, safe="{}/:").replace("%7B", "{").replace("%7D", "}")


def _exchange(
    scrub: Scrubber,
    volatile: Volatile,
    record: ExchangeRecord,
    body: tuple[BodyKind, Any],
    index: int,
    origin: str,
) -> ExchangeData:
    headers: dict[str, str] = {}
    raw = {k.lower(): v for k, v in record.request_headers}
    for name in KEPT_REQUEST_HEADERS:
        if name in raw:
            value = scrub.header(name, raw[name])
            if name == "content-type" and "multipart/form-data" in value.lower():
                value = "multipart/form-data"  # the boundary is the browser's, new every time
            headers[name] = value
    request: RequestData = {"headers": headers}
    kind, value = body
    if kind == "form":
        request["form"] = _fields(scrub, volatile, value)
    elif kind == "multipart":
        request["multipart"] = _fields(scrub, volatile, value)
    elif kind == "json":
        request["json"] = _json(volatile, scrub.json_value(value))
    elif kind == "text":
        request["text"] = scrub.text(value)
    chunks: list[ChunkData] = []
    times = [t for t, _ in record.chunks]
    for t, data in zip(times, scrub.body([d for _, d in record.chunks]), strict=True):
        if not data:
            continue
        try:
            chunks.append({"t": round(t, 3), "text": data.decode("utf-8")})
        except UnicodeDecodeError:
            chunks.append({"t": round(t, 3), "b64": base64.b64encode(data).decode("ascii")})
    response: ResponseData = {
        "status": record.status,
        "headers": [
            [k, scrub.header(k, v)] for k, v in record.response_headers if k.lower() not in DROPPED_RESPONSE_HEADERS
        ],
        "chunks": chunks,
        "complete": record.complete,
        "error": scrub.text(record.error) if record.error else None,
    }
    return {
        "index": index,
        "method": record.method,
        "path": _path(scrub, volatile, record.url, origin),
        "request": request,
        "response": response,
    }
