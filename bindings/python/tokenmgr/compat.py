"""The seed's ``TokenManager``, on the library's semantics.

A worker written for the original system (``keepa_deals/token_manager.py``)
moves over by changing one import::

    from tokenmgr.compat import TokenManager, TokenRechargeError

Method names and signatures are the seed's.  What they do is the library's:
leases instead of check-then-act reservations, syncs that keep the calls in
flight, recharge on Redis' clock, per-worker heartbeats.

=================================  ========================================  ===============================================
method                             the seed did                              now
=================================  ========================================  ===============================================
``TokenManager(api_key)``          Redis at ``$REDIS_URL``; the key kept     the pool of the configuration
                                   for ``/token``                            (``$TOKENMGR_CONFIG``...); ``$REDIS_URL`` is
                                                                             used when nothing else names Redis; the key
                                                                             only reaches the Keepa client (never a repr)
``request_permission_for_call``    INCRBYFLOAT -cost, read, maybe revert     one atomic acquire: a lease of ``ceil(cost)``
``(estimated_cost)``               (two workers could both pass: balances    tokens, soft floor, recharge target, deficit
                                   of -150, -340); slept in 5-minute         limit counting calls in flight at their
                                   chunks; raised ``TokenRechargeError``     learned error; waits exactly the refill it
                                   when the wait passed 60 s                 needs with heartbeats; raises
                                                                             ``TokenRechargeError`` when the wait would
                                                                             pass ``bucket.max_wait_s`` (60), or when
                                                                             refill cannot cure it.  A grant still pending
                                                                             from an earlier call (never reported) is
                                                                             completed with its estimate first.
``update_after_call``              SET the balance to ``tokensLeft``,        completes the pending grant with the report:
``(tokens_left_from_api)``         wiping reservations of calls in flight    the balance becomes ``tokensLeft`` minus the
                                   (429s followed)                           calls still in flight; a report older than
                                                                             one applied is ignored.  Optional
                                                                             ``tokens_consumed=`` (teaches the pool its
                                                                             estimate error) and ``timestamp=`` (Keepa's,
                                                                             ms; default: this host's clock when the
                                                                             permission was granted, so that reports of
                                                                             workers that answer out of order are never
                                                                             applied newest-last).  Without a pending
                                                                             grant it is applied as a sync.
``emit_heartbeat()``               SET one global key: any live worker hid   this worker's own heartbeat on Redis' clock
                                   a dead one                                (``tokenmgr workers``), coalesced; never raises
``sync_tokens(force=False)``       ``/token`` at most once a minute per      ``/token`` at most once every
                                   process (restarts reset it: 1440 calls    ``keepa.token_sync_min_interval_s`` across the
                                   a day), then overwrote the balance        whole pool; in-flight-aware; ``force`` bypasses
                                                                             the throttle; failures are logged (as before)
``get_projected_tokens()``,        the cached balance plus a linear refill   the pool's balance with Keepa's discrete
``get_tokens_left()``              estimate, capped at 300                   refill projected to now (``status``)
``should_skip_sync()``             recharge flag and projection < burst      recharge mode on and the balance below
                                   threshold                                 ``bucket.recharge_target``
``has_enough_tokens(cost)``        cached balance >= max(threshold, cost)    the same test on the pool's projected
                                                                             balance, and not recharging (advisory: only
                                                                             ``request_permission_for_call`` decides)
attributes                         constants in the class                    read from the options: ``SOFT_BUFFER_FLOOR``
                                                                             (``bucket.soft_floor``), ``MAX_DEFICIT``,
                                                                             ``MIN_TOKEN_THRESHOLD``
                                                                             (``bucket.min_start_balance``),
                                                                             ``BURST_THRESHOLD``
                                                                             (``bucket.recharge_target``); ``tokens``,
                                                                             ``max_tokens``, ``REFILL_RATE_PER_MINUTE``
                                                                             from the pool's status
=================================  ========================================  ===============================================

One TokenManager may be shared by the threads of a worker (a lock keeps
its pending grant consistent; each thread still gets its own connection)
and survives ``fork()`` like :class:`tokenmgr.Client`.
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import threading
import time
from typing import Any, Optional

from .client import Client, Grant
from .errors import ConfigError, Denied, GrantError, TokenmgrError

__all__ = ["TokenManager", "TokenRechargeError"]

logger = logging.getLogger(__name__)


class TokenRechargeError(Denied):
    """The seed's exception: tokens are too far away to wait for here
    (free the worker and retry later).  A :class:`tokenmgr.Denied`, with
    ``reason`` and ``retry_after``."""


class TokenManager:
    """The seed's TokenManager on libtokenmgr (see the module's table).

    ``TokenManager(api_key=None, *, client=None, config=None, **options)``:
    ``api_key`` is the Keepa access key (for :meth:`sync_tokens`);
    ``client`` an existing :class:`tokenmgr.Client` to use (it is not
    closed by :meth:`close`); otherwise one is opened with ``config`` and
    ``options`` as :class:`tokenmgr.Client` takes them.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        client: Optional[Client] = None,
        config: Any = None,
        **options: Any,
    ) -> None:
        if client is not None:
            self.client = client
            self._owned = False
        else:
            base = {}
            if os.environ.get("REDIS_URL"):
                base["redis.url"] = os.environ["REDIS_URL"]  # the seed's variable
            self.client = Client(config, keepa_key=api_key or None, _base=base, **options)
            self._owned = True
        self._lock = threading.RLock()
        self._pending: Optional[Grant] = None
        self._granted_ms = 0
        self.last_api_call_timestamp = 0.0

    def __repr__(self) -> str:
        return "<tokenmgr.compat.TokenManager %r>" % (self.client,)

    def close(self) -> None:
        """End a pending grant (with its estimate) and close the client
        this TokenManager opened."""
        with self._lock:
            self._settle_pending()
            if self._owned:
                self.client.close()

    def __enter__(self) -> "TokenManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- the seed's attributes -------------------------------------------

    @property
    def SOFT_BUFFER_FLOOR(self) -> int:
        return self.client.option("bucket.soft_floor")

    @property
    def MAX_DEFICIT(self) -> int:
        return self.client.option("bucket.max_deficit")

    @property
    def MIN_TOKEN_THRESHOLD(self) -> int:
        return self.client.option("bucket.min_start_balance")

    @property
    def BURST_THRESHOLD(self) -> int:
        return self.client.option("bucket.recharge_target")

    @property
    def tokens(self) -> float:
        """The pool's balance now (refill projected)."""
        return float(self.client.status()["tokens"] or 0)

    @property
    def max_tokens(self) -> float:
        return float(self.client.status()["capacity"] or 0)

    @property
    def REFILL_RATE_PER_MINUTE(self) -> float:
        """Tokens per refill period (Keepa: a minute); 0 before a sync."""
        return float(self.client.status()["refill_rate"] or 0)

    # ---- the seed's methods ------------------------------------------------

    def _settle_pending(self) -> None:
        g, self._pending = self._pending, None
        if g is not None and g.state == "live":
            try:
                g.complete()  # never reported: assume the call ran
            except TokenmgrError as e:
                logger.warning("tokenmgr: ending grant %s: %s", g.id, e)

    def request_permission_for_call(self, estimated_cost: float) -> None:
        """Block until ``estimated_cost`` tokens are reserved (see the
        module's table).  Raises :class:`TokenRechargeError` when they are
        further away than ``bucket.max_wait_s``; :class:`tokenmgr.Unavailable`
        when Redis is away."""
        if isinstance(estimated_cost, bool) or not isinstance(estimated_cost, numbers.Real):
            raise TypeError("estimated_cost must be a number, not %r" % (estimated_cost,))
        cost = int(math.ceil(estimated_cost))
        with self._lock:
            self._settle_pending()
            synced = False
            while True:
                try:
                    self._pending = self.client.acquire(cost, wait=True)
                    self.last_api_call_timestamp = time.time()
                    # The report's default time: the API answered after
                    # this, so a later grant's report is never taken as
                    # older than ours (a report applied out of order would
                    # wipe the calls between: SEED failure 2).
                    self._granted_ms = int(self.last_api_call_timestamp * 1000)
                    return
                except Denied as e:
                    if e.reason == "need_sync" and not synced:
                        # No state yet: one (throttled) /token, as the
                        # library's Keepa client does.
                        synced = True
                        try:
                            self.client.sync_from_keepa()
                            continue
                        except TokenmgrError as why:
                            logger.error("Failed to sync tokens: %s", why)
                    raise TokenRechargeError(e.message, e.reason, e.retry_after, e.tokens, e.recharge_mode, e.code) from None

    def update_after_call(
        self,
        tokens_left_from_api: Optional[float],
        tokens_consumed: Optional[int] = None,
        timestamp: Optional[int] = None,
    ) -> None:
        """Report the call made after :meth:`request_permission_for_call`
        (see the module's table)."""
        with self._lock:
            g, self._pending = self._pending, None
            self.last_api_call_timestamp = time.time()
            if tokens_left_from_api is None:
                if g is not None and g.state == "live":
                    g.complete(consumed=tokens_consumed)
                return
            left = int(math.floor(float(tokens_left_from_api)))
            live = g is not None and g.state == "live"
            if timestamp is not None:
                ts = int(timestamp)
            else:
                ts = self._granted_ms if live else int(time.time() * 1000)
            if live:
                try:
                    g.complete(consumed=tokens_consumed, tokens_left=left, timestamp=ts)
                    return
                except GrantError:
                    pass  # expired: its report still counts, as a sync
            rate = self.client.status()["refill_rate"]
            if rate is not None:
                self.client.sync(left, rate, timestamp=ts)

    def emit_heartbeat(self, phase: Optional[str] = None) -> None:
        """This worker is alive (``phase`` optional).  Never raises, like
        the seed's."""
        try:
            self.client.heartbeat(phase)
        except TokenmgrError as e:
            logger.debug("tokenmgr: heartbeat not recorded: %s", e)

    def sync_tokens(self, force: bool = False) -> None:
        """Fetch the balance from ``/token`` (throttled across the pool;
        ``force`` bypasses it) and apply it.  Failures are logged, as the
        seed logged them; a missing access key raises ConfigError."""
        try:
            r = self.client.sync_from_keepa(force)
        except ConfigError:
            raise
        except TokenmgrError as e:
            logger.error("Failed to sync tokens: %s", e)
            return
        if r["throttled"]:
            logger.debug("sync_tokens throttled for %s ms more", r["next_allowed_ms"])

    def get_projected_tokens(self) -> float:
        return self.tokens

    def get_tokens_left(self) -> float:
        return self.tokens

    def should_skip_sync(self) -> bool:
        s = self.client.status()
        return bool(s["recharge_mode"]) and (s["tokens"] or 0) < (s["recharge_target"] or 0)

    def has_enough_tokens(self, estimated_cost: float) -> bool:
        s = self.client.status()
        if not s["synced"] or s["recharge_mode"]:
            return False
        need = max(self.MIN_TOKEN_THRESHOLD, math.ceil(estimated_cost))
        return s["tokens"] >= need
