"""Where ``scraper`` keeps what outlives one chat: which site conversation belongs to which history.

:class:`ConversationStore` is the seam (a second backend plugs in behind it); :class:`SQLiteStore` is
the embedded default, a file under the user's data folder. It keeps ids and hashes of histories, and
message text only when asked to. :class:`RedisStore` (``redis://...``) is the one several servers share.
A site's budget of chats a minute (:class:`RateLimiter`) and a conversation's one-turn-at-a-time lock
(:class:`TurnLocks`) have a backend for this process and one in that Redis.
"""

from __future__ import annotations

from ._limits import (
    MemoryRateLimiter,
    MemoryTurnLocks,
    RateLimiter,
    RedisRateLimiter,
    RedisTurnLocks,
    TurnLocks,
    lock_ttl,
)
from ._redis import RedisStore
from ._store import ConversationStore, MemoryStore, SQLiteStore, default_store_path, open_store

__all__ = [
    "ConversationStore",
    "MemoryRateLimiter",
    "MemoryStore",
    "MemoryTurnLocks",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisStore",
    "RedisTurnLocks",
    "SQLiteStore",
    "TurnLocks",
    "default_store_path",
    "lock_ttl",
    "open_store",
]
