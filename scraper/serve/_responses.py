"""``POST /v1/responses``: OpenAI's stateful API over the chat boxes.

``input`` (a string, or messages) is this turn; ``instructions`` go before the first user turn;
``previous_response_id`` continues the site conversation that answered that response (the store
remembers which one, so it survives a restart where the site keeps the history itself). ``stream``
sends OpenAI's events: ``response.created``, ``response.output_text.delta``, ...,
``response.completed``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from starlette.requests import Request

from ..client._completions import CompletionRequest, CompletionUsage
from ..client._models import Resolved
from ..errors import ConfigError
from ..plugins import Finish, TextDelta
from ._app import ChatResponse, Send, ServerState, _json, _read_json
from ._errors import error_body

__all__ = ["ResponsesResponse", "responses_endpoint"]

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_JSON_HEADERS = [(b"content-type", b"application/json")]
_LINK = "r:"  # store keys that lead from a response id to its conversation


def _input_messages(value: Any) -> list[dict[str, str]]:
    """``input`` as chat messages: a string is one user message; items are messages whose content is
    a string or text parts (``input_text``/``output_text``)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)) or not value:
        raise ConfigError("`input` must be a string or a non-empty list of messages.")
    messages = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or item.get("type", "message") != "message" or "role" not in item:
            raise ConfigError(f"input[{index}] must be a message: {{'role': ..., 'content': ...}}.")
        content = item.get("content")
        if isinstance(content, Sequence) and not isinstance(content, str):
            texts = []
            for part in content:
                if not isinstance(part, Mapping) or part.get("type") not in ("input_text", "output_text", "text"):
                    raise ConfigError(f"input[{index}].content: only text parts can be sent to a chat box.")
                texts.append(str(part.get("text") or ""))
            content = "".join(texts)
        if not isinstance(content, str):
            raise ConfigError(f"input[{index}].content must be a string or a list of text parts.")
        messages.append({"role": str(item["role"]), "content": content})
    return messages


class ResponsesResponse(ChatResponse):
    """One ``/v1/responses`` answer: the same slot, chat and disconnect handling as a chat completion,
    in the Responses API's shapes."""

    def __init__(self, state: ServerState, body: Mapping[str, Any], request: CompletionRequest, chosen: Resolved):
        super().__init__(state, request, chosen)
        self.previous = body.get("previous_response_id")
        self.instructions = body.get("instructions")
        self.id = f"resp_{secrets.token_hex(24)}"
        self.item_id = f"msg_{secrets.token_hex(24)}"
        self.created = int(time.time())
        self.sequence = 0
        self.record = None
        if self.previous is not None:
            found = state.book.store.find(_LINK + str(self.previous))
            self.record = state.book.get(found) if found else None
            if self.record is None:
                raise ConfigError(f"previous_response_id {self.previous!r} is not known to this server.")

    def _events(self) -> AsyncIterator[TextDelta | Finish]:
        messages: list[Mapping[str, str]] = list(self.record.messages) if self.record is not None else []
        if self.instructions and not messages:
            messages.append({"role": "system", "content": str(self.instructions)})
        messages += list(self.request.messages)
        timeout = self.request.timeout or self.state.config.timeout
        self.turn, events = self.state.service.turn(
            self.chosen.target,
            messages,
            record=self.record,
            timeout=timeout,
            book=self.state.book,
            wait=self.state.config.queue_timeout,
        )
        return events

    def _object(self, status: str, text: str | None, usage: CompletionUsage | None = None) -> dict[str, Any]:
        output = []
        if text is not None:
            part = {"type": "output_text", "text": text, "annotations": []}
            output.append(
                {"type": "message", "id": self.item_id, "status": status, "role": "assistant", "content": [part]}
            )
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.chosen.model,
            "output": output,
            "instructions": self.instructions,
            "previous_response_id": self.previous,
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
            "text": {"format": {"type": "text"}},
            "error": None,
            "incomplete_details": None,
            "metadata": {},
            "usage": _usage(usage),
        }

    def _remember(self) -> None:
        """The next ``previous_response_id`` naming this response continues the same site conversation."""
        plan = self.turn.plan if self.turn is not None else None
        if plan is not None:
            self.state.book.store.link(_LINK + self.id, plan.record.id)

    def _sse(self, kind: str, **fields: Any) -> bytes:
        self.sequence += 1
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        return f"event: {kind}\n".encode() + b"data: " + _json(data) + b"\n\n"

    async def _render(self, send: Send, events: AsyncIterator[TextDelta | Finish]) -> None:
        parts: list[str] = []
        usage: CompletionUsage | None = None
        if not self.request.stream:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                else:
                    usage = CompletionUsage.from_site(event.usage)
            self._remember()
            await self._start(send, 200, _JSON_HEADERS)
            await self._last(send, _json(self._object("completed", "".join(parts), usage)))
            return
        async for event in events:
            if not self.started:
                await self._begin(send)
            if isinstance(event, TextDelta):
                parts.append(event.text)
                delta = self._sse(
                    "response.output_text.delta",
                    item_id=self.item_id,
                    output_index=0,
                    content_index=0,
                    delta=event.text,
                    logprobs=[],
                )
                await send({"type": "http.response.body", "body": delta, "more_body": True})
            else:
                usage = CompletionUsage.from_site(event.usage)
        if not self.started:
            await self._begin(send)
        self._remember()
        text = "".join(parts)
        part = {"type": "output_text", "text": text, "annotations": []}
        done = self._object("completed", text, usage)
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        tail = (
            self._sse("response.output_text.done", **where, text=text, logprobs=[])
            + self._sse("response.content_part.done", **where, part=part)
            + self._sse("response.output_item.done", output_index=0, item=done["output"][0])
            + self._sse("response.completed", response=done)
        )
        await self._last(send, tail)

    async def _begin(self, send: Send) -> None:
        """The stream's status line and its opening events, sent with the first event of the chat."""
        await self._start(send, 200, _SSE_HEADERS)
        item = self._object("in_progress", "")["output"][0]
        item["content"] = []
        opening = (
            self._sse("response.created", response=self._object("in_progress", None))
            + self._sse("response.in_progress", response=self._object("in_progress", None))
            + self._sse("response.output_item.added", output_index=0, item=item)
            + self._sse(
                "response.content_part.added",
                item_id=self.item_id,
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
        )
        await send({"type": "http.response.body", "body": opening, "more_body": True})

    def _stream_error(self, exc: Exception) -> bytes:
        error = error_body(exc)[1]["error"]
        failed = {**self._object("failed", None), "error": {"code": error["code"], "message": error["message"]}}
        return self._sse("error", code=error["code"], message=error["message"], param=None) + self._sse(
            "response.failed", response=failed
        )


def _usage(usage: CompletionUsage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }


async def responses_endpoint(state: ServerState, request: Request) -> ResponsesResponse:
    """Check and resolve a ``/v1/responses`` request (the same model and site rules as chat completions)."""
    state.authorize(request)
    body = await _read_json(request, state.config.max_body)
    if not isinstance(body, Mapping):
        raise ConfigError("The request body must be a JSON object with `model` and `input`.")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ConfigError("`instructions` must be a string.")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise ConfigError("`previous_response_id` must be a string.")
    fields = {key: body[key] for key in ("model", "stream", "provider", "site", "timeout") if key in body}
    checked = CompletionRequest.from_body({**fields, "messages": _input_messages(body.get("input"))})
    chosen = state.catalog.resolve(checked.model, provider=checked.provider, site=checked.site)
    return ResponsesResponse(state, body, checked, chosen)
