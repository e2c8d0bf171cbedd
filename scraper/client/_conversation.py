"""Conversations: a whole history in, one turn out, the site's own memory used for the rest.

OpenAI clients send the whole history with every turn. The last user message goes to the chat box
as this turn's message; the earlier turns travel the way the plugin carries them
(:attr:`~scraper.plugins.Plugin.history`):

- ``"client"`` (the page sends them, AI Engine, AI Power up to 2.2): sent natively, as the plugin's
  own script shapes them;
- ``"server"`` (the site keeps them, AIPKit, MxChat): the site conversation that produced this history
  is continued (found by a hash of the history as the site saw it); a history never seen starts a new
  site conversation whose first message carries the earlier turns as context, oldest dropped first
  to fit the site's input limit;
- ``"none"`` (no conversation of the client's own on the site, Kognetiks): every message carries the
  earlier turns as context the same way.

A system message goes before the first user turn (no chat box lets a guest set one). The records of
which site conversation belongs to which history live in a :class:`~scraper.state.ConversationStore`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..plugins import Bot, Plugin, Values
from ..state import ConversationStore, MemoryTurnLocks, RedisStore, RedisTurnLocks, TurnLocks, lock_ttl, open_store
from ..wire import logger

__all__ = [
    "Conversation",
    "ConversationBook",
    "Record",
    "Turn",
    "TurnPlan",
    "TurnRequest",
    "default_book",
    "site_turns",
]

log = logger("scraper.conversation")

_SYSTEM_ROLES = ("system", "developer")
LIVE_RECORDS = 1000  # conversations whose text this process keeps in memory (the store keeps ids only)

Turn = dict[str, str]


def site_turns(messages: Sequence[Mapping[str, str]]) -> tuple[list[Turn], str]:
    """The earlier turns as the site sees them, and this turn's message.

    System messages go before the first user turn; the last message must be the user's.
    """
    system = "\n\n".join(str(m["content"]) for m in messages if m.get("role") in _SYSTEM_ROLES and m.get("content"))
    turns: list[Turn] = [
        {"role": "assistant" if m.get("role") == "assistant" else "user", "content": str(m.get("content") or "")}
        for m in messages
        if m.get("role") not in _SYSTEM_ROLES
    ]
    if not turns or turns[-1]["role"] != "user":
        raise ConfigError("The last message must be the user's: it is what the chat box is sent this turn.")
    if system:
        first = next(turn for turn in turns if turn["role"] == "user")
        first["content"] = f"{system}\n\n{first['content']}"
    return turns[:-1], turns[-1]["content"]


def history_key(bot: Bot, page_url: str, turns: Sequence[Mapping[str, str]]) -> str:
    """A hash of a history as the site saw it, on one bot of one page (no text is kept, only this)."""
    canonical = json.dumps(
        [page_url, bot.plugin, bot.id, [[t["role"], t["content"]] for t in turns]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "h:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def carry_context(turns: Sequence[Mapping[str, str]], message: str, limit: int) -> tuple[str, int]:
    """One message carrying the earlier turns as context, then ``message``, within ``limit`` characters:
    whole turns dropped oldest first (a line break counted twice: a page's form may send it as CRLF).
    Returns the text and how many earlier turns it carries."""
    lines = [f"{'User' if t['role'] == 'user' else 'Assistant'}: {t['content']}" for t in turns]
    for start in range(len(lines) + 1):
        kept = lines[start:]
        text = ("Our conversation so far:\n" + "\n".join(kept) + "\n\n" + message) if kept else message
        if len(text) + text.count("\n") <= limit:
            return text, len(kept)
    return message, 0


@dataclass
class Record:
    """One site conversation: where, the plugin's ids for it, and (in memory) its turns."""

    id: str
    site: str
    plugin: str
    bot: str
    state: dict[str, Any] = field(default_factory=dict)
    messages: list[Turn] = field(default_factory=list)
    turns: int = 0  # messages so far (the store may keep the count without the text)

    @property
    def text_lost(self) -> bool:
        """Turns were had but their text is not here (a store that keeps ids only, read after a restart)."""
        return self.turns > 0 and not self.messages

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site": self.site,
            "plugin": self.plugin,
            "bot": self.bot,
            "state": self.state,
            "messages": self.messages,
            "turns": len(self.messages),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        return cls(
            id=str(data["id"]),
            site=str(data.get("site") or ""),
            plugin=str(data.get("plugin") or ""),
            bot=str(data.get("bot") or ""),
            state=dict(data.get("state") or {}),
            messages=list(data.get("messages") or []),
            turns=int(data.get("turns") or 0),
        )


@dataclass
class TurnPlan:
    """What one turn sends, and what to remember once it is answered."""

    record: Record
    prompt: str
    history: list[Turn]
    turns: list[Turn]  # the earlier turns as the client gave them (what the next history starts with)
    message: str  # this turn's message as the client gave it
    carried: int | None = None  # earlier turns the site does not keep: how many went as context
    dropped: int = 0  # ... and how many of them did not fit
    fresh: bool = True  # ... in a site conversation started for them (False: a site that keeps none)

    @property
    def context_note(self) -> str | None:
        """What to tell the client when an unseen history was carried as context (None otherwise)."""
        if self.carried is None:
            return None
        where = "new site conversation" if self.fresh else "the site keeps no conversation"
        return f"{where}; {self.carried} earlier turns carried as context, {self.dropped} dropped"


@dataclass
class TurnRequest:
    """One turn asked of the chat service: the whole history (or what makes it once the conversation's
    earlier turns are done), the book that knows its conversations, the conversation to go on with when
    the caller knows it, how long to wait for its other turns to end (None: the chat's timeout); ``plan``
    is filled once the turn is planned."""

    messages: Sequence[Mapping[str, str]] | Callable[[], Sequence[Mapping[str, str]]]
    book: ConversationBook
    record: Record | None = None
    plan: TurnPlan | None = None
    wait: float | None = None

    def history(self) -> Sequence[Mapping[str, str]]:
        return self.messages() if callable(self.messages) else self.messages


class ConversationBook:
    """Which site conversation goes on with which history: the store, plus the text of recent
    conversations kept in memory, and one lock per conversation so its turns run one at a time (in this
    process; across every server sharing the store when it is Redis)."""

    def __init__(self, store: ConversationStore, locks: TurnLocks | None = None) -> None:
        self.store = store
        if locks is None:
            locks = RedisTurnLocks(store, lock_ttl()) if isinstance(store, RedisStore) else MemoryTurnLocks()
        self.locks = locks
        self._live: OrderedDict[str, Record] = OrderedDict()
        self._guard = threading.Lock()

    def hold(self, conversation_id: str, wait: float) -> contextlib.AbstractAsyncContextManager[None]:
        """The lock that serialises one conversation's turns, for a block; ConversationBusyError after
        ``wait`` seconds without it."""
        return self.locks.hold(conversation_id, wait)

    def refresh(self, record: Record) -> Record:
        """``record`` as the store has it now, when other servers share the store (the turn that held
        the conversation's lock before may have run on one of them)."""
        if getattr(self.store, "shared", False) and (saved := self.store.load(record.id)):
            fresh = Record.from_dict(saved)
            record.state, record.messages, record.turns = fresh.state, fresh.messages, fresh.turns
        return record

    def get(self, conversation_id: str) -> Record | None:
        """A conversation by id: from memory, else from the store (its ids, maybe not its text). A store
        other servers share is read every time: the last turn may have run on another one."""
        shared = getattr(self.store, "shared", False)
        with self._guard:
            live = None if shared else self._live.get(conversation_id)
        if live is not None:
            return live
        saved = self.store.load(conversation_id)
        return self._keep(Record.from_dict(saved)) if saved else None

    def new(self, site: str, plugin: str = "", bot: str = "") -> Record:
        return self._keep(Record(uuid.uuid4().hex, site, plugin, bot))

    def _keep(self, record: Record) -> Record:
        with self._guard:
            self._live[record.id] = record
            self._live.move_to_end(record.id)
            while len(self._live) > LIVE_RECORDS:
                self._live.popitem(last=False)
        return record

    def find(self, key: str) -> Record | None:
        found = self.store.find(key)
        return self.get(found) if found else None

    def last(self, site: str) -> str | None:
        return self.store.last(site)

    def plan(
        self,
        plugin: Plugin,
        bot: Bot,
        page_url: str,
        values: Values,
        messages: Sequence[Mapping[str, str]],
        record: Record | None = None,
    ) -> TurnPlan:
        """This turn's message, the history to send, and the site conversation to continue."""
        turns, message = site_turns(messages)
        if (ready := getattr(self.store, "ready", None)) is not None:
            ready()  # a shared store that is down fails the turn before the site is sent anything
        if record is None and turns:
            record = self.find(history_key(bot, page_url, turns))
        if record is not None and record.text_lost and plugin.history == "client" and not turns:
            raise ConfigError(
                f"The earlier turns of conversation {record.id} are not kept here (the store keeps ids only), and "
                f"{plugin.label} needs them sent with each message. Send the whole history instead."
            )
        if record is not None and not record.plugin:  # a conversation made before its first turn
            record.plugin, record.bot = plugin.name, bot.id
        if record is not None and (record.plugin, record.bot) != (plugin.name, bot.id):
            record = None
        # A site that keeps no conversation ("none") is given the earlier turns as context every turn; one
        # that keeps it ("server") only when it never saw this history.
        if turns and (plugin.history == "none" or (record is None and plugin.history == "server")):
            limit = plugin.input_limit(values) or plugin.context_limit
            prompt, carried = carry_context(turns, message, max(limit, len(message)))
            record = record or self.new(page_url, plugin.name, bot.id)
            plan = TurnPlan(record, prompt, [], turns, message, carried, fresh=plugin.history == "server")
            plan.dropped = len(turns) - carried
            log.log(
                logging.INFO if plugin.history == "server" else logging.DEBUG,
                "%s: %d earlier turns the site does not keep; %d of them go as context in this message "
                "(%d dropped to fit %d characters)",
                page_url,
                len(turns),
                carried,
                plan.dropped,
                limit,
            )
            return plan
        if record is None:
            record = self.new(page_url, plugin.name, bot.id)
        history = turns if plugin.history == "client" else []
        return TurnPlan(record, message, history, turns, message)

    def answered(self, plan: TurnPlan, bot: Bot, reply: str) -> None:
        """The turn is answered: the history that now ends with ``reply`` leads to this conversation."""
        record = plan.record
        record.messages = [
            *plan.turns,
            {"role": "user", "content": plan.message},
            {"role": "assistant", "content": reply},
        ]
        self.store.save(record.id, record.to_dict())
        self.store.link(history_key(bot, record.site, record.messages), record.id)
        self._keep(record)


_default: ConversationBook | None = None
_default_guard = threading.Lock()


def default_book() -> ConversationBook:
    """The process's book, on the store ``SCRAPER_CONVERSATIONS`` names (default: the user's data folder)."""
    global _default
    with _default_guard:
        if _default is None:
            _default = ConversationBook(open_store())
        return _default


class Conversation:
    """A conversation kept for the caller: ``async for piece in conv.send("...")``, then the next.

    ``messages`` are the turns as the site saw them; ``id`` names it for :meth:`resume` (in this
    process, and in another one through the store: the site's ids always, the text when the store
    keeps it). Its turns run one at a time.
    """

    def __init__(self, service: Any, target: Any, record: Record, *, system: str | None = None, **options: Any):
        self.service = service
        self.target = target
        self.record = record
        self.system = system
        self.options = options
        self.last: TurnRequest | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def messages(self) -> list[Turn]:
        return [dict(turn) for turn in self.record.messages]

    def send(self, message: str) -> Any:
        """This turn's reply as a :class:`~scraper.ChatStream` (text chunks as they come)."""
        from ._stream import ChatStream

        def history() -> list[Mapping[str, str]]:  # made when the turn runs, after the ones sent before it
            made: list[Mapping[str, str]] = list(self.record.messages)
            if self.system and not made:
                made.append({"role": "system", "content": self.system})
            return [*made, {"role": "user", "content": message}]

        self.last, events = self.service.turn(self.target, history, record=self.record, **self.options)
        return ChatStream(events)
