"""The conversation store: records of site conversations, and the history hashes that lead to them.

A record is a small JSON object (the plugin's ids for the site conversation, the site, the bot). A
link maps a key (a hash of a history as the site saw it, or a response id) to a record's id. Both are
bounded by age and by count, oldest dropped first, so the file never grows without end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError

__all__ = ["ConversationStore", "MemoryStore", "SQLiteStore", "default_store_path", "open_store"]

MAX_AGE = 30 * 24 * 3600.0  # seconds a conversation is kept after its last turn
MAX_COUNT = 10_000  # conversations kept at most
PRUNE_EVERY = 64  # saves between two prunings of what is past its age or beyond the count


class ConversationStore(Protocol):
    """What the conversation layer needs of a store (every method is quick and thread-safe)."""

    def load(self, conversation_id: str) -> dict[str, Any] | None:
        """The record saved under ``conversation_id``, or None."""
        ...

    def save(self, conversation_id: str, record: dict[str, Any]) -> None:
        """Save (or replace) a record; it counts as used now."""
        ...

    def find(self, key: str) -> str | None:
        """The conversation id ``key`` leads to, or None."""
        ...

    def link(self, key: str, conversation_id: str) -> None:
        """Make ``key`` lead to ``conversation_id``."""
        ...

    def last(self, site: str) -> str | None:
        """The id of the conversation with ``site`` used last, or None."""
        ...

    def close(self) -> None: ...


def default_store_path() -> Path:
    """``$XDG_DATA_HOME/scraper/conversations.sqlite3`` (``~/.local/share/scraper/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "scraper" / "conversations.sqlite3"


def open_store(where: str | os.PathLike[str] | None = None, *, keep_text: bool = False) -> ConversationStore:
    """The store at ``where`` (a file path; ``"off"``: one kept in memory for this process only; a
    ``redis://`` URL: the store several servers share); by default ``SCRAPER_CONVERSATIONS``, else the
    file under the user's data folder."""
    choice = str(where) if where is not None else os.environ.get("SCRAPER_CONVERSATIONS") or ""
    from ._redis import RedisStore, is_redis_url  # the one module imports the other's bounds

    if is_redis_url(choice):
        return RedisStore(choice, keep_text=True)
    if choice.lower() == "off":
        return MemoryStore(keep_text=keep_text)
    return SQLiteStore(choice or default_store_path(), keep_text=keep_text)


def _without_text(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its message text taken out (the store keeps ids and hashes only)."""
    slim = {key: value for key, value in record.items() if key != "messages"}
    state = slim.get("state")
    if isinstance(state, dict):
        slim["state"] = {key: value for key, value in state.items() if key != "native"}
    return slim


class MemoryStore:
    """A store for this process only (``--conversations off``): the same bounds, nothing on disk."""

    def __init__(self, *, keep_text: bool = False, max_count: int = MAX_COUNT, max_age: float = MAX_AGE) -> None:
        self.keep_text = keep_text
        self.max_count = max_count
        self.max_age = max_age
        self._records: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._links: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, conversation_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._records.get(conversation_id)
            return json.loads(json.dumps(found[1])) if found and found[0] > time.time() - self.max_age else None

    def save(self, conversation_id: str, record: dict[str, Any]) -> None:
        kept = record if self.keep_text else _without_text(record)
        with self._lock:
            self._records.pop(conversation_id, None)
            self._records[conversation_id] = (time.time(), json.loads(json.dumps(kept)))
            while len(self._records) > self.max_count:
                self._records.popitem(last=False)

    def find(self, key: str) -> str | None:
        with self._lock:
            found = self._links.get(key)
            return found[1] if found and found[1] in self._records else None

    def link(self, key: str, conversation_id: str) -> None:
        with self._lock:
            self._links.pop(key, None)
            self._links[key] = (time.time(), conversation_id)
            while len(self._links) > self.max_count * 8:
                self._links.popitem(last=False)

    def last(self, site: str) -> str | None:
        with self._lock:
            for conversation_id, (_, record) in reversed(self._records.items()):
                if record.get("site") == site:
                    return conversation_id
        return None

    def close(self) -> None:
        return None


class SQLiteStore:
    """The embedded default: one SQLite file, safe to share between threads of one process (and
    between processes, as SQLite is)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        keep_text: bool = False,
        max_count: int = MAX_COUNT,
        max_age: float = MAX_AGE,
        prune_every: int = PRUNE_EVERY,
    ) -> None:
        self.path = Path(path)
        self.prune_every = max(1, prune_every)
        self.keep_text = keep_text
        self.max_count = max_count
        self.max_age = max_age
        self._lock = threading.Lock()
        self._saves = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10)
            # a turn writes a row or two: the write-ahead log makes that a quick append, not a sync of the file
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, site TEXT, used REAL, record TEXT)"
                )
                self._db.execute("CREATE TABLE IF NOT EXISTS links (key TEXT PRIMARY KEY, id TEXT, used REAL)")
                self._db.execute("CREATE INDEX IF NOT EXISTS conversations_used ON conversations (used)")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"Cannot use {self.path} as the conversation store ({exc}). Pass --conversations PATH (or set "
                "SCRAPER_CONVERSATIONS) to another file, or `off`."
            ) from None

    def load(self, conversation_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM conversations WHERE id = ? AND used > ?",
                (conversation_id, time.time() - self.max_age),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def save(self, conversation_id: str, record: dict[str, Any]) -> None:
        kept = record if self.keep_text else _without_text(record)
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO conversations (id, site, used, record) VALUES (?, ?, ?, ?)",
                (conversation_id, str(record.get("site") or ""), now, json.dumps(kept, ensure_ascii=False)),
            )
            self._saves += 1
            if (self._saves - 1) % self.prune_every == 0:
                self._prune(now)

    def _prune(self, now: float) -> None:
        """Drop conversations past their age or beyond the count, and the links that led to them."""
        self._db.execute("DELETE FROM conversations WHERE used <= ?", (now - self.max_age,))
        self._db.execute(
            "DELETE FROM conversations WHERE id NOT IN (SELECT id FROM conversations ORDER BY used DESC LIMIT ?)",
            (self.max_count,),
        )
        self._db.execute(
            "DELETE FROM links WHERE used <= ? OR id NOT IN (SELECT id FROM conversations)", (now - self.max_age,)
        )

    def find(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM links WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def link(self, key: str, conversation_id: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO links (key, id, used) VALUES (?, ?, ?)", (key, conversation_id, time.time())
            )

    def last(self, site: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM conversations WHERE site = ? ORDER BY used DESC LIMIT 1", (site,)
            ).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
