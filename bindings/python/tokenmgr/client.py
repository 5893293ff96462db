"""The client: a pool's token bucket in Redis, shared by every worker."""
from __future__ import annotations

import math
import numbers
import os
import threading
from ctypes import byref, c_int, c_int64, c_void_p, create_string_buffer
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Union

from . import _lib, _options
from .errors import (
    ClientClosed,
    ConfigError,
    Denied,
    GrantError,
    InvalidArgument,
    TokenmgrError,
)

L = _lib.lib
_INT64_MAX = 2**63 - 1


def _int(name: str, value: Any, lo: int = -_INT64_MAX, hi: int = _INT64_MAX) -> int:
    """`value` as a C int64: an integer (not a bool), else TypeError."""
    if type(value) is int and lo <= value <= hi:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be an integer, not %s %r" % (name, type(value).__name__, value))
    v = int(value)
    if not lo <= v <= hi:
        raise InvalidArgument("%s %d is out of range" % (name, v), _lib.EINVAL)
    return v


def _seconds_ms(name: str, value: Any) -> int:
    """Seconds (int or float, >= 0) as whole milliseconds, rounded up."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be a number of seconds, not %s %r" % (name, type(value).__name__, value))
    v = float(value)
    if not math.isfinite(v) or v < 0 or v > 86400 * 365:
        raise InvalidArgument("%s %r is not a number of seconds in 0..31536000" % (name, value), _lib.EINVAL)
    return int(math.ceil(v * 1000))


class Reconcile(NamedTuple):
    """The outcome of a complete, release or sync (the CLI's JSON keys)."""

    tokens: int
    """The pool's balance after."""
    report_applied: bool
    """True when the API's report (tokens_left) set the balance."""
    report_stale: bool
    """True when the report was older than one already applied (ignored)."""


def _reconcile(d: Dict[str, Any]) -> Reconcile:
    return Reconcile(d["tokens"], d["report_applied"], d["report_stale"])


def _reason(code: int) -> str:
    return _lib.text(L.tkm_reason_str(code))


def _denied(cost: int, reason: str, tokens: int, retry_ms: int, recharge_mode: bool) -> Denied:
    retry = None if retry_ms < 0 else retry_ms / 1000.0
    if reason == "wait_too_long":
        why = "the tokens are %.3f s away, more than the wait allowed" % retry
    elif reason == "need_sync":
        why = "the pool has no state yet: sync it first (Client.sync, sync_from_keepa)"
    elif retry is None:
        why = "refill cannot cure it (refill rate 0)"
    else:
        why = "refill may cure it in %.3f s" % retry
    msg = "%d tokens denied (%s, balance %d): %s" % (cost, reason, tokens, why)
    return Denied(msg, reason, retry, tokens, recharge_mode)


class Grant:
    """A reservation of ``cost`` tokens: a lease in the pool.

    End it with :meth:`complete` once the API call was made (with what it
    cost and, better, the API's report), or :meth:`release` when it was
    not made.  A grant not ended within ``bucket.lease_ttl_s`` expires and
    keeps its cost.

    As a context manager (``with client.acquire(12) as g:``):

    - leaving the block by an exception **releases** the grant (the call is
      taken as not made: call :meth:`complete` as soon as the response is
      in, before work that may fail);
    - leaving it normally without having ended the grant **completes it
      with the estimate** (``consumed = cost``, no report).

    Attributes: ``id`` (the grant id), ``cost`` (the estimate reserved),
    ``tokens`` (the balance after the decision), ``recharge_mode``,
    ``recharge_expired`` (this acquire cleared a timed-out recharge),
    ``state`` (``"live"``, ``"completed"``, ``"released"``, or ``"expired"``
when the pool no longer knew it).
    """

    __slots__ = ("_client", "_gid", "id", "cost", "tokens", "recharge_mode", "recharge_expired", "state")

    def __init__(self, client: "Client", cost: int, gid: bytes, tokens: int, flags: int) -> None:
        self._client = client
        self._gid = gid
        self.id: str = gid.decode("ascii")
        self.cost = cost
        self.tokens = tokens
        self.recharge_mode = bool(flags & _lib.INTO_RECHARGE_MODE)
        self.recharge_expired = bool(flags & _lib.INTO_RECHARGE_EXPIRED)
        self.state = "live"

    def __repr__(self) -> str:
        return "<tokenmgr.Grant %s cost=%d %s>" % (self.id, self.cost, self.state)

    def _end(self, how: str) -> None:
        if self.state != "live":
            raise GrantError(
                "grant %s was already %s; it cannot be %s" % (self.id, self.state, how),
                _lib.ENOGRANT,
            )

    def complete(
        self,
        consumed: Optional[int] = None,
        tokens_left: Optional[int] = None,
        timestamp: Optional[int] = None,
    ) -> Reconcile:
        """The call was made and cost ``consumed`` tokens (default: the
        estimate).  ``tokens_left`` and ``timestamp`` are the API's report
        (Keepa's ``tokensLeft`` and ``timestamp``, Unix milliseconds), given
        together: a report newer than the last one applied sets the pool's
        balance to ``tokens_left`` minus the calls still in flight.
        Raises :class:`GrantError` when the grant already ended or expired.
        """
        if self.state != "live":
            self._end("completed")
        used = self.cost if consumed is None else _int("consumed", consumed)
        if (tokens_left is None) != (timestamp is None):
            raise InvalidArgument(
                "tokens_left and timestamp go together: the API's report is both", _lib.EINVAL
            )
        has = tokens_left is not None
        left = _int("tokens_left", tokens_left) if has else 0
        ts = _int("timestamp", timestamp, 0) if has else 0
        client = self._client
        h = client._handle()
        with h:
            rc = L.tkm_complete_into(h.c, self._gid, used, has, left, ts, h.r_tokens, h.r_flags)
            if rc != _lib.OK:
                if rc == _lib.ENOGRANT:
                    self.state = "expired"  # unknown to the pool: nothing to end
                raise client._fail(rc, h)
            tokens, flags = h.tokens.value, h.flags.value
        self.state = "completed"
        return Reconcile(tokens, bool(flags & _lib.INTO_REPORT_APPLIED), bool(flags & _lib.INTO_REPORT_STALE))

    def release(self) -> Reconcile:
        """The call was not made: return the estimate to the pool."""
        self._end("released")
        gid = self._gid
        out = c_void_p()
        self._run(lambda c: L.tkm_release_json(c, gid, byref(out)))
        self.state = "released"
        return _reconcile(_lib.take_json(out))

    def _run(self, fn: Callable[[int], int]) -> None:
        try:
            self._client._call(fn)
        except GrantError:
            self.state = "expired"  # unknown to the pool: nothing to end
            raise

    def __enter__(self) -> "Grant":
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
        if self.state != "live":
            return False
        if et is None:
            self.complete()
            return False
        try:
            self.release()
        except TokenmgrError as e:
            # The block's exception stays the one raised; the lease expires.
            note = "tokenmgr: releasing %s failed (%s); its lease expires after bucket.lease_ttl_s" % (
                self.id,
                e,
            )
            if hasattr(ev, "add_note"):
                ev.add_note(note)
        return False


class _Handle:
    """One C client (one Redis connection) of one thread of one process.

    ``with h:`` holds it for one call: it raises ClientClosed when the
    client was closed, and frees the handle on the way out when close()
    came meanwhile (close() never waits for a handle in use, so a signal
    handler may call it while its own thread is inside a call)."""

    __slots__ = (
        "c", "pid", "lock", "cancel", "keepa", "freed", "closing",
        # out-parameters of the scalar calls, reused under the lock
        "id", "tokens", "reason", "retry", "flags", "r_tokens", "r_reason", "r_retry", "r_flags",
    )

    def __init__(self, c: int, pid: int) -> None:
        self.c = c
        self.pid = pid
        self.lock = threading.Lock()
        self.cancel = c_int(0)
        self.keepa: Optional[int] = None
        self.freed = False
        self.closing = False
        self.id = create_string_buffer(_lib.GRANT_ID_LEN)
        self.tokens, self.reason = c_int64(), c_int()
        self.retry, self.flags = c_int64(), c_int()
        self.r_tokens, self.r_reason = byref(self.tokens), byref(self.reason)
        self.r_retry, self.r_flags = byref(self.retry), byref(self.flags)

    def __enter__(self) -> "_Handle":
        self.lock.acquire()
        if self.freed or self.closing:
            self._leave()
            raise ClientClosed("the tokenmgr Client was closed")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._leave()

    def _leave(self) -> None:
        try:
            if self.closing:
                self.free()
        finally:
            self.lock.release()

    def free(self) -> None:
        """Free the C handles (the lock held)."""
        if not self.freed:
            self.freed = True
            if self.keepa is not None:
                L.tkm_keepa_free(self.keepa)
            L.tkm_client_free(self.c)

    def close(self) -> None:
        """Free now if unused, else when its call ends."""
        self.closing = True
        self.cancel.value = 1
        if self.lock.acquire(blocking=False):
            try:
                self.free()
            finally:
                self.lock.release()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Client:
    """A client of one pool (one API key's token bucket in Redis).

    ``Client(config=None, pool=None, redis=None, *, worker_id=None,
    heartbeats=True, keepa_key=None, **options)``

    The options come, lowest first, from the defaults, the YAML file
    ``config`` (else ``$TOKENMGR_CONFIG``, else
    ``/etc/tokenmgr/tokenmgr.yaml`` when it exists; ``config=False``: none),
    the environment (``TOKENMGR_REDIS_URL``, ``TOKENMGR_BUCKET_SOFT_FLOOR``...),
    then the arguments: ``pool``, ``redis`` (the URL: ``redis://...`` or
    ``unix:///path/redis.sock``) and every option of the table by its YAML
    key with ``_`` for ``.`` (``bucket_soft_floor=20``, ``redis_timeout_ms=300``).
    A list option takes a list.  Unknown keywords raise
    :class:`UnknownOptionError`; a value or file the library refuses raises
    :class:`ConfigError` with the library's message.

    ``worker_id`` names this worker in heartbeats (default
    ``"<hostname>:<pid>"``, so each forked child is its own worker);
    ``heartbeats=False`` makes a tool that never beats; ``keepa_key`` is
    the Keepa access key for :class:`tokenmgr.Keepa` and
    :meth:`sync_from_keepa` (default: ``keepa.key_file`` or
    ``$TOKENMGR_KEEPA_KEY``); it never appears in a message or repr.

    Threads: a Client may be shared by threads.  Each thread gets its own
    connection (a C client of its own, opened on its first call), so
    threads never wait for each other.

    fork(): a Client opened in a parent and used in a forked child (Celery's
    prefork pool) notices the new process id and opens its own connection
    in the child; the parent's connections are never used, written to or
    closed by the child, and the parent keeps working.

    A blocking wait in the main thread runs in a helper thread, so Ctrl-C
    and signal handlers run at once: an interrupt cancels the wait (a grant
    obtained meanwhile is released) and the exception propagates.

    ``close()`` (or leaving ``with Client(...) as client:``) closes every
    connection; a call after it raises :class:`ClientClosed`.

    Options (keyword, YAML key, type, default, doc):
    """

    def __init__(
        self,
        config: Union[None, bool, str, "os.PathLike[str]"] = None,
        pool: Optional[str] = None,
        redis: Optional[str] = None,
        *,
        worker_id: Optional[str] = None,
        heartbeats: bool = True,
        keepa_key: Optional[str] = None,
        **options: Any,
    ) -> None:
        # Defaults of a front end (tokenmgr.compat), below the file.
        base: Optional[Dict[str, Any]] = options.pop("_base", None)
        self._closed = True  # until the first handle is open
        self._opts: Optional[c_void_p] = None
        if keepa_key is not None and not isinstance(keepa_key, str):
            raise ConfigError("keepa_key must be text")
        self._keepa_key = keepa_key.encode() if keepa_key else None
        self._opts = _options.build(
            config, {"pool": pool, "redis.url": redis}, options, worker_id, base
        )
        self._heartbeats = bool(heartbeats)
        self._cancelled = False
        self._reg_lock = threading.Lock()
        self._reg_pid = os.getpid()
        self._registry: Dict[int, _Handle] = {}
        self._tls = threading.local()
        self._closed = False
        try:
            h = self._handle()
            self._pool = self._get(h, "pool")
            self._redis_text = self._get(h, "redis.url")  # password as ***
        except BaseException:
            self.close()
            raise

    # ---- handles -------------------------------------------------------

    def _open(self, pid: int) -> _Handle:
        c = c_void_p()
        rc = L.tkm_client_open(self._opts, byref(c))
        if rc != _lib.OK:
            msg = _lib.text(L.tkm_errstr(c)) if c.value else ""
            L.tkm_client_free(c)
            raise _lib.error(rc, msg)
        h = _Handle(c.value, pid)
        L.tkm_client_set_heartbeats(h.c, int(self._heartbeats))
        L.tkm_client_set_cancel(h.c, byref(h.cancel))
        if self._cancelled:
            h.cancel.value = 1
        return h

    def _handle(self) -> _Handle:
        h = getattr(self._tls, "h", None)
        if h is not None and h.pid == os.getpid():
            return h
        return self._new_handle()

    def _new_handle(self) -> _Handle:
        if self._closed:
            raise ClientClosed("the tokenmgr Client was closed")
        pid = os.getpid()
        if self._reg_pid != pid:
            # A forked child: the parent's handles (and a lock another
            # thread may have held at fork()) are the parent's.  They are
            # dropped unused: freeing one could write to a socket the
            # parent still uses (a TLS close_notify from curl).
            self._reg_lock = threading.Lock()
            self._registry = {}
            self._reg_pid = pid
        # current_thread() registers a thread that threading did not start
        # (a dummy that stays listed), so _prune never takes its handle.
        tid = threading.current_thread().ident or threading.get_ident()
        with self._reg_lock:
            self._prune(tid)
            h = self._registry.get(tid)
            if h is None or h.freed or h.closing:
                # (A handle left by an ended thread whose ident this thread
                # reuses is taken over: nobody else can be using it.)
                h = self._open(pid)
                self._registry[tid] = h
        self._tls.h = h
        return h

    def _prune(self, me: int) -> None:
        """Close the handles of threads that ended (called locked)."""
        alive = {t.ident for t in threading.enumerate()}
        for tid in [t for t in self._registry if t not in alive and t != me]:
            self._registry.pop(tid).close()

    def _fail(self, rc: int, h: _Handle) -> BaseException:
        if self._closed:
            return ClientClosed("the tokenmgr Client was closed")
        return _lib.error(rc, _lib.text(L.tkm_errstr(h.c)))

    def _call(self, fn: Callable[[int], int]) -> None:
        """Run fn(C client) on this thread's connection; raise on failure."""
        h = self._handle()
        with h:
            rc = fn(h.c)
            if rc != _lib.OK:
                raise self._fail(rc, h)
        return None

    def _blocking(
        self,
        h: _Handle,
        fn: Callable[[], Any],
        undo: Optional[Callable[[Any], None]] = None,
    ) -> Any:
        """Run fn() (which blocks in C; called inside ``with h``).  In the
        main thread it runs in a helper thread so that signal handlers run
        while it waits; an exception from one (KeyboardInterrupt...) cancels
        the wait through the library's cancel flag, lets the C call end
        (a call in flight completes and is accounted for), hands its result
        to undo() and propagates."""
        if not _in_main_thread():
            return fn()
        box: List[Any] = []
        done = threading.Event()

        def run() -> None:
            try:
                box.append((True, fn()))
            except BaseException as e:  # pragma: no cover - ctypes calls do not raise
                box.append((False, e))
            finally:
                done.set()

        t = threading.Thread(target=run, name="tokenmgr-wait", daemon=True)
        t.start()
        try:
            done.wait()
        except BaseException:
            h.cancel.value = 1
            while not done.is_set():
                try:
                    done.wait()
                except BaseException:
                    pass  # the first interrupt is the one raised
            if not self._cancelled and not h.closing:
                h.cancel.value = 0
            ok, value = box[0]
            if ok and undo is not None:
                undo(value)
            raise
        ok, value = box[0]
        if not ok:
            raise value
        return value

    @staticmethod
    def _get(h: _Handle, key: str) -> Any:
        return _options.get_option(L.tkm_client_options(h.c), key)

    # ---- the public API ------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if not hasattr(self, "_pool"):
            return "<tokenmgr.Client (not opened)>"
        state = " closed" if self._closed else ""
        return "<tokenmgr.Client pool=%r redis=%r%s>" % (
            getattr(self, "_pool", "?"),
            getattr(self, "_redis_text", "?"),
            state,
        )

    def close(self) -> None:
        """Close every connection of this client (all threads'; waits in
        other threads end with :class:`ClientClosed`).  Idempotent."""
        if self._closed and self._opts is None:
            return
        self._closed = True
        if self._reg_pid == os.getpid():
            hs = list(self._registry.values())
            for h in hs:
                h.cancel.value = 1  # waits end at once...
            for h in hs:
                h.close()  # ...and a handle in use is freed when its call ends
        self._registry = {}
        if self._opts is not None:
            L.tkm_options_free(self._opts)
            self._opts = None

    def __del__(self) -> None:
        try:
            if getattr(self, "_opts", None) is not None:
                self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._closed

    @property
    def pool(self) -> str:
        """The pool's name."""
        return self._pool

    @property
    def worker_id(self) -> str:
        """This process's worker id (the default: ``<hostname>:<pid>``)."""
        h = self._handle()
        with h:
            return _lib.text(L.tkm_client_worker_id(h.c))

    def option(self, name: str) -> Any:
        """The effective value of an option, by YAML key
        (``"bucket.soft_floor"``) or keyword (``"bucket_soft_floor"``)."""
        key = name if name in _options.BY_KEY else _options.BY_KEYWORD.get(name, {}).get("key", name)
        h = self._handle()
        with h:
            return self._get(h, key)

    def cancel(self) -> None:
        """Make every wait of this client end now with :class:`Cancelled`
        (and later ones at once): for signal handlers that stop a worker.
        A call in flight is never cut.  Sticky, like the C library's flag."""
        self._cancelled = True
        for h in list(self._registry.values()):
            h.cancel.value = 1

    def acquire(self, cost: int, wait: Union[bool, float] = True) -> Grant:
        """Reserve ``cost`` tokens and return the :class:`Grant`.

        ``wait=True`` blocks while refill can cure a denial, up to
        ``bucket.max_wait_s`` (heartbeats continue, phase "waiting for
        tokens"); ``wait=False`` (or 0) tries once and never sleeps;
        ``wait=SECONDS`` blocks up to that long.  A wait longer than
        allowed is refused at once (reason ``"wait_too_long"``).

        Raises :class:`Denied` (``reason``, ``retry_after`` seconds),
        :class:`Unavailable` when Redis is away, :class:`InvalidArgument`
        for a negative cost or one no balance could allow, ``TypeError``
        for a cost that is not an integer, :class:`Cancelled`.
        """
        if type(cost) is not int:
            if isinstance(cost, bool) or not isinstance(cost, numbers.Integral):
                raise TypeError("cost must be an integer number of tokens, not %s %r" % (type(cost).__name__, cost))
            cost = int(cost)
        if not -_INT64_MAX <= cost <= _INT64_MAX:
            raise InvalidArgument("cost %d is out of range" % cost, _lib.EINVAL)
        if wait is True:
            wait_ms = -1
        elif wait is False or wait is None:
            wait_ms = 0
        else:
            wait_ms = _seconds_ms("wait", wait)
        h = self._handle()
        with h:
            c = h.c
            # Try once; in the main thread a wait then runs in a helper
            # thread (see _blocking), elsewhere the library waits here.
            first = 0 if wait_ms != 0 and _in_main_thread() else wait_ms
            rc = L.tkm_acquire_into(c, cost, first, h.id, _lib.GRANT_ID_LEN, h.r_tokens, h.r_reason,
                                    h.r_retry, h.r_flags)
            if rc != _lib.OK:
                raise self._fail(rc, h)
            r = (h.id.value, h.tokens.value, h.reason.value, h.retry.value, h.flags.value)
            if first != wait_ms and not r[4] & _lib.INTO_GRANTED and r[3] >= 0 and _reason(r[2]) != "need_sync":
                r = self._blocking(h, lambda: self._acquire_once(h, cost, wait_ms), undo=lambda x: self._undo_grant(c, x))
                if isinstance(r, int):
                    raise self._fail(r, h)
        gid, tokens, reason, retry, flags = r
        if not flags & _lib.INTO_GRANTED:
            raise _denied(cost, _reason(reason), tokens, retry, bool(flags & _lib.INTO_RECHARGE_MODE))
        return Grant(self, cost, gid, tokens, flags)

    @staticmethod
    def _acquire_once(h: _Handle, cost: int, wait_ms: int) -> Any:
        rc = L.tkm_acquire_into(h.c, cost, wait_ms, h.id, _lib.GRANT_ID_LEN, h.r_tokens, h.r_reason,
                                h.r_retry, h.r_flags)
        if rc != _lib.OK:
            return rc
        return (h.id.value, h.tokens.value, h.reason.value, h.retry.value, h.flags.value)

    @staticmethod
    def _undo_grant(c: int, r: Any) -> None:
        if isinstance(r, tuple) and r[4] & _lib.INTO_GRANTED:
            out = c_void_p()
            if L.tkm_release_json(c, r[0], byref(out)) == _lib.OK:
                L.tkm_free(out)

    def heartbeat(self, phase: Optional[str] = None, busy_for: Optional[float] = None) -> None:
        """Record that this worker is alive, doing ``phase``.

        Heartbeats closer than ``heartbeat.min_interval_ms`` are coalesced
        here (nothing sent), so a loop may beat every iteration.
        ``busy_for=SECONDS`` (1..86400, rounded up) declares the worker
        legitimately busy without API calls for that long (a long database
        write): the stall rule counts it alive meanwhile.
        """
        p = None if phase is None else str(phase).encode("utf-8", "replace")
        if busy_for is None:
            self._call(lambda c: L.tkm_heartbeat(c, p))
            return
        if isinstance(busy_for, bool) or not isinstance(busy_for, numbers.Real):
            raise TypeError("busy_for must be a number of seconds, not %r" % (busy_for,))
        secs = math.ceil(busy_for) if math.isfinite(busy_for) else -1
        if not -_INT64_MAX <= secs <= _INT64_MAX:
            secs = -1
        self._call(lambda c: L.tkm_heartbeat_busy(c, p, secs))

    def status(self) -> Dict[str, Any]:
        """The pool's state, refill projected to now: the keys of
        ``tokenmgr status --json`` (``tokens``, ``capacity``,
        ``refill_rate``, ``recharge_mode``, ``inflight``, ``synced``,
        ``workers_alive``, ``workers_total``, ``heartbeat_age_s``...)."""
        out = c_void_p()
        self._call(lambda c: L.tkm_status_json(c, byref(out)))
        return _lib.take_json(out)

    def workers(self) -> List[Dict[str, Any]]:
        """Every worker heard from, freshest first, as ``tokenmgr workers
        --json`` lists them: ``id``, ``heartbeat_age_s``, ``phase``,
        ``busy_until_ms``, ``busy_for_s``, ``alive``."""
        out = c_void_p()
        self._call(lambda c: L.tkm_workers_json(c, byref(out)))
        return _lib.take_json(out)["workers"]

    def sync(
        self,
        tokens: int,
        rate: int,
        refill_in: Optional[int] = None,
        timestamp: Optional[int] = None,
    ) -> Reconcile:
        """Set the pool's balance from an API report: ``tokens`` (Keepa's
        ``tokensLeft``), ``rate`` (``refillRate``, tokens per period),
        ``refill_in`` (``refillIn``, milliseconds to the next refill) and
        ``timestamp`` (Unix milliseconds; default: Redis' now).  The balance
        becomes ``tokens`` minus the calls still in flight; a report older
        than the last one applied is ignored (``report_stale``)."""
        t = _int("tokens", tokens)
        r = _int("rate", rate)
        ri = -1 if refill_in is None else _int("refill_in", refill_in, 0)
        ts = -1 if timestamp is None else _int("timestamp", timestamp, 0)
        out = c_void_p()
        self._call(lambda c: L.tkm_sync_json(c, t, r, ri, ts, byref(out)))
        return _reconcile(_lib.take_json(out))

    def sync_from_keepa(self, force: bool = False) -> Dict[str, Any]:
        """Fetch the balance from Keepa's free ``/token`` and apply it,
        throttled across the pool (at most once every
        ``keepa.token_sync_min_interval_s``); ``force=True`` bypasses the
        throttle.  Returns ``throttled``, ``next_allowed_ms``, ``tokens``,
        ``refill_rate``."""
        from .keepa import _keepa_call

        out = c_void_p()
        _keepa_call(self, lambda kc: L.tkm_keepa_sync_json(kc, int(bool(force)), byref(out)))
        return _lib.take_json(out)

    def recharge(self, on: bool) -> None:
        """Force recharge mode on (True) or off (False)."""
        self._call(lambda c: L.tkm_recharge(c, int(bool(on))))

    def round_trips(self) -> int:
        """Redis round trips this thread's connection has made."""
        h = self._handle()
        with h:
            return int(L.tkm_client_round_trips(h.c))


Client.__doc__ = (Client.__doc__ or "").rstrip() + "\n\n" + _options.describe() + "\n    "
