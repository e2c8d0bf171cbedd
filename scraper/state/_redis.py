"""The shared store: several ``scraper serve`` processes behind one load balancer keep their state in
one Redis (``--state redis://[:password@]host:port/db``), so a conversation goes on on whichever server
gets its next turn, and a site's cleared anti-bot cookies serve them all.

Keys live under one prefix: ``conv:ID`` (a record, JSON, expiring ``max_age`` after its last turn),
``link:KEY`` (a history hash to a record's id, same age), ``used`` (ids by last use, for the count
bound), ``site:SITE`` (ids by last use per site, for :meth:`RedisStore.last`), ``profile:SITE`` (a
site's cookies and the User-Agent they were earned with), ``rate:SITE`` (the starts of a site's chats in
its budget's window, expiring with it), ``lock:ID`` (the token of the turn running in a conversation,
expiring unless renewed). Every call is bounded by the client's socket
timeouts: a Redis that does not answer is a :class:`~scraper.errors.StateUnavailableError` (503) at
once, and the next call connects again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .._extras import import_extra
from ..errors import ConfigError, StateUnavailableError
from ..wire import logger, redact_url
from ._store import MAX_AGE, MAX_COUNT, _without_text

__all__ = ["SOCKET_TIMEOUT", "URL_FORM", "RedisStore", "is_redis_url"]

log = logger("scraper.state")

SOCKET_TIMEOUT = 2.0  # seconds one Redis call may take (connecting, or waiting for its answer)
PREFIX = "scraper:"
URL_FORM = "redis://HOST:PORT/DB (a password goes before the host)"

T = TypeVar("T")

# A site's budget: drop the starts that left the window, then take one if fewer than the limit remain,
# else answer the milliseconds until the oldest leaves. Redis's own clock: the servers' clocks may differ.
_TAKE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], ms, ms .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - ms)
"""
# A lock is renewed, or deleted, only by the holder whose token it still carries.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def is_redis_url(where: str) -> bool:
    return where.startswith(("redis://", "rediss://", "unix://"))


class RedisStore:
    """A :class:`~scraper.state.ConversationStore` in Redis, shared by every process that names it.

    It keeps the records whole, message text included (by default): a server that never saw a
    conversation must be able to continue it, and the Redis is the user's own. Thread-safe: redis-py's
    client takes a connection from its pool for each call.
    """

    shared = True  # the records of other processes change under this one: read them fresh each turn

    def __init__(
        self,
        url: str,
        *,
        keep_text: bool = True,
        max_count: int = MAX_COUNT,
        max_age: float = MAX_AGE,
        socket_timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        redis = import_extra("redis", "redis")
        self.url = url
        self.shown = redact_url(url)  # the URL as logs and /health may show it
        self.keep_text = keep_text
        self.max_count = max_count
        self.max_age = max_age
        self._ttl = max(1, int(max_age))
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
            raise ConfigError(f"{self.shown} is not a Redis URL: use {URL_FORM}.")
        try:
            self._redis: Any = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry_on_timeout=False,
                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
                health_check_interval=30,
                decode_responses=True,
            )
        except ValueError as exc:
            raise ConfigError(f"{self.shown} is not a Redis URL ({exc}).") from None
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._take = self._redis.register_script(_TAKE)
        self._renew = self._redis.register_script(_RENEW)
        self._unlock = self._redis.register_script(_UNLOCK)

    def _call(self, what: str, action: Callable[[Any], T]) -> T:
        """``action(client)``, a Redis that does not answer turned into one typed error."""
        try:
            return action(self._redis)
        except self._errors as exc:
            log.warning("the shared state at %s did not answer %s: %s", self.shown, what, type(exc).__name__)
            raise StateUnavailableError(
                f"The shared state store at {self.shown} does not answer ({type(exc).__name__}); retry once it is back."
            ) from None

    def ready(self) -> None:
        """Raise :class:`~scraper.errors.StateUnavailableError` now when Redis does not answer: a turn
        whose conversation could not be kept is not sent to the site."""
        self._call("a ping", lambda r: r.ping())

    def ping(self) -> bool:
        """Whether Redis answers now (for /health: never raises)."""
        try:
            return bool(self._redis.ping())
        except self._errors:
            return False

    # -- conversations ------------------------------------------------------------------------------------
    def load(self, conversation_id: str) -> dict[str, Any] | None:
        raw = self._call("a load", lambda r: r.get(f"{PREFIX}conv:{conversation_id}"))
        return json.loads(raw) if raw else None

    def save(self, conversation_id: str, record: dict[str, Any]) -> None:
        kept = record if self.keep_text else _without_text(record)
        now = time.time()
        site = str(record.get("site") or "")

        def write(r: Any) -> None:
            pipe = r.pipeline()
            pipe.set(f"{PREFIX}conv:{conversation_id}", json.dumps(kept, ensure_ascii=False), ex=self._ttl)
            pipe.zadd(f"{PREFIX}used", {conversation_id: now})
            pipe.zadd(f"{PREFIX}site:{site}", {conversation_id: now})
            pipe.expire(f"{PREFIX}site:{site}", self._ttl)
            pipe.zremrangebyscore(f"{PREFIX}used", "-inf", now - self.max_age)
            pipe.zremrangebyscore(f"{PREFIX}site:{site}", "-inf", now - self.max_age)
            pipe.zcard(f"{PREFIX}used")
            count = pipe.execute()[-1]
            if count > self.max_count:  # the oldest beyond the count go, as in the other stores
                dropped = [member for member, _ in r.zpopmin(f"{PREFIX}used", count - self.max_count)]
                if dropped:
                    r.delete(*(f"{PREFIX}conv:{member}" for member in dropped))

        self._call("a save", write)

    def find(self, key: str) -> str | None:
        def read(r: Any) -> str | None:
            found = r.get(f"{PREFIX}link:{key}")
            return str(found) if found and r.exists(f"{PREFIX}conv:{found}") else None

        return self._call("a lookup", read)

    def link(self, key: str, conversation_id: str) -> None:
        self._call("a link", lambda r: r.set(f"{PREFIX}link:{key}", conversation_id, ex=self._ttl))

    def last(self, site: str) -> str | None:
        def read(r: Any) -> str | None:
            for member in r.zrevrange(f"{PREFIX}site:{site}", 0, 31):
                if r.exists(f"{PREFIX}conv:{member}"):
                    return str(member)
                r.zrem(f"{PREFIX}site:{site}", member)  # dropped for the count bound: forget it here too
            return None

        return self._call("a lookup", read)

    # -- site profiles (cookies that cleared a check, and their User-Agent) -------------------------------------
    def load_profile(self, site: str) -> dict[str, Any] | None:
        raw = self._call("a profile load", lambda r: r.get(f"{PREFIX}profile:{site}"))
        return json.loads(raw) if raw else None

    def save_profile(self, site: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        self._call("a profile save", lambda r: r.set(f"{PREFIX}profile:{site}", text, ex=self._ttl))

    # -- bounds several servers share (see scraper.state._limits) -------------------------------------------
    def take(self, site: str, limit: int, window: float) -> float:
        """Take one chat from ``site``'s budget of ``limit`` per ``window`` seconds: 0, or the seconds
        until one frees (one atomic script: two servers never both take the last one)."""
        token = uuid.uuid4().hex
        waited = self._call(
            "a rate check", lambda r: self._take(keys=[f"{PREFIX}rate:{site}"], args=[int(window * 1000), limit, token])
        )
        return int(waited) / 1000

    def lock(self, conversation_id: str, token: str, ttl: float) -> bool:
        """Take a conversation's lock for ``token`` when nobody holds it (it expires after ``ttl`` s)."""
        key = f"{PREFIX}lock:{conversation_id}"
        return bool(self._call("a lock", lambda r: r.set(key, token, nx=True, px=max(1, int(ttl * 1000)))))

    def renew(self, conversation_id: str, token: str, ttl: float) -> bool:
        """Give the lock ``ttl`` s more, if ``token`` still holds it."""
        key, ms = f"{PREFIX}lock:{conversation_id}", max(1, int(ttl * 1000))
        return bool(self._call("a lock renewal", lambda r: self._renew(keys=[key], args=[token, ms])))

    def unlock(self, conversation_id: str, token: str) -> bool:
        """Release the lock, if ``token`` still holds it (a lock that expired and was taken stays taken)."""
        key = f"{PREFIX}lock:{conversation_id}"
        return bool(self._call("a lock release", lambda r: self._unlock(keys=[key], args=[token])))

    def close(self) -> None:
        self._redis.close()
