"""Where ``scraper`` keeps what outlives one chat: which site conversation belongs to which history.

:class:`ConversationStore` is the seam (a second backend plugs in behind it); :class:`SQLiteStore` is
the embedded default, a file under the user's data folder. It keeps ids and hashes of histories, and
message text only when asked to. :class:`RedisStore` (``redis://...``) is the one several servers share.
"""

from __future__ import annotations

from ._redis import RedisStore
from ._store import ConversationStore, MemoryStore, SQLiteStore, default_store_path, open_store

__all__ = ["ConversationStore", "MemoryStore", "RedisStore", "SQLiteStore", "default_store_path", "open_store"]
