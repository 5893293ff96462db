"""The Keepa API, paid for through the pool: acquire, request, complete."""
from __future__ import annotations

import json
import re
from ctypes import byref, c_char_p, c_size_t, c_void_p, string_at
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _lib
from .client import Client, _int
from .errors import ClientClosed, Denied, InvalidArgument

L = _lib.lib

Params = Union[Mapping[str, Any], Iterable[Tuple[str, Any]], None]


def _keepa_handle(client: Client, h: Any) -> int:
    """This thread's tkm_keepa (opened on first use; inside ``with h``)."""
    if h.keepa is None:
        kc = c_void_p()
        rc = L.tkm_keepa_open_key(h.c, client._keepa_key, byref(kc))
        if rc != _lib.OK:
            msg = _lib.text(L.tkm_keepa_errstr(kc)) if kc.value else ""
            L.tkm_keepa_free(kc)
            raise _lib.error(rc, msg)
        h.keepa = kc.value
    return h.keepa


_AWAY = re.compile(r"are (\d+) ms away")
_CANNOT = re.compile(r"cannot be reserved: ([a-z_]+)")


def _keepa_error(rc: int, kc: int) -> BaseException:
    msg = _lib.text(L.tkm_keepa_errstr(kc))
    if rc == _lib.EWAIT:
        # The Keepa client says why in its message: "N tokens are M ms
        # away, more than bucket.max_wait_s..." or "cannot be reserved: R".
        away = _AWAY.search(msg)
        if away:
            return Denied(msg, "wait_too_long", int(away.group(1)) / 1000.0, code=rc)
        why = _CANNOT.search(msg)
        return Denied(msg, why.group(1) if why else "wait_too_long", None, code=rc)
    return _lib.error(rc, msg)


def _keepa_call(
    client: Client,
    fn: Callable[[int], int],
    undo: Optional[Callable[[Any], None]] = None,
) -> None:
    h = client._handle()
    with h:
        kc = _keepa_handle(client, h)
        rc = client._blocking(h, lambda: fn(kc), undo)
        if rc != _lib.OK:
            if client._closed:
                raise ClientClosed("the tokenmgr Client was closed")
            raise _keepa_error(rc, kc)


def _param_text(name: str, v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return ",".join(_param_text(name, x) for x in v)
    if isinstance(v, (str, int)):
        return str(v)
    raise TypeError("parameter %s: %s %r is not text, an integer or a list" % (name, type(v).__name__, v))


def _pairs(params: Params) -> List[Tuple[str, str]]:
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    out = []
    for name, v in items:
        if not isinstance(name, str) or not name:
            raise TypeError("parameter names must be non-empty text, not %r" % (name,))
        if v is not None:
            out.append((name, _param_text(name, v)))
    return out


# What a call costs (KEEPA.md's table), for the reservation; the pool learns
# how far actual costs (tokensConsumed) exceed these.
_FLAT = {
    "/deal": 5,
    "/query": 10,
    "/search": 10,
    "/bestsellers": 50,
    "/topseller": 50,
    "/category": 1,
    "/seller": 1,
    "/token": 0,
}


def estimate_cost(path: str, params: Params = None) -> int:
    """A cost estimate by Keepa's documented prices: ``/product`` 1 per
    ASIN (6 with ``offers``, +2 ``buybox``, +1 ``rating``, +2 ``stock``),
    ``/deal`` 5, ``/query`` and ``/search`` 10, ``/bestsellers`` 50,
    ``/category`` and ``/seller`` 1.  Other paths need an explicit cost."""
    p = "/" + path.lstrip("/")
    d = dict(_pairs(params))
    if p == "/product":
        asins = [a for a in d.get("asin", "").split(",") if a]
        codes = [c for c in d.get("code", "").split(",") if c]
        n = max(1, len(asins) + len(codes))
        each = 6 if d.get("offers", "0") not in ("", "0") else 1
        each += 2 * (d.get("buybox") == "1") + (d.get("rating") == "1") + 2 * (d.get("stock") == "1")
        return n * each
    if p in _FLAT:
        return _FLAT[p]
    raise InvalidArgument("no cost estimate for %s: pass cost=" % p, _lib.EINVAL)


@dataclass(frozen=True, repr=False)
class Response:
    """One answer of the Keepa API, with its token fields (None when the
    answer carried none)."""

    body: bytes
    http_status: int
    tokens_left: Optional[int]
    tokens_consumed: Optional[int]
    refill_in_ms: Optional[int]
    refill_rate: Optional[int]
    timestamp_ms: Optional[int]
    processing_ms: int
    token_flow_reduction: float
    error: str
    attempts: int
    """HTTP requests sent for this call (retries included)."""
    http_429s: int
    """Of which answered 429 (each re-waited through the pool, never blindly)."""
    _parsed: List[Any] = field(default_factory=list, compare=False)

    def json(self) -> Any:
        """The body parsed as JSON (parsed once)."""
        if not self._parsed:
            self._parsed.append(json.loads(self.body))
        return self._parsed[0]

    def __repr__(self) -> str:
        return "<tokenmgr.Response %d tokens_left=%s consumed=%s %d bytes>" % (
            self.http_status,
            self.tokens_left,
            self.tokens_consumed,
            len(self.body),
        )


class Keepa:
    """The Keepa API through a :class:`Client`'s pool.

    ``Keepa(client).request(path, params, cost=None)`` reserves ``cost``
    tokens (blocking, with heartbeats, up to ``bucket.max_wait_s``), sends
    the request (``keepa.base_url``, gzip accepted), completes the grant
    with ``tokensConsumed`` and the report (``tokensLeft``, ``timestamp``),
    and returns a :class:`Response`.  A 429 is never read as "no data": the
    API's balance is applied and the wait is the pool's.  Network errors,
    5xx and bodies without token fields are retried with back-off up to
    ``keepa.max_retries`` (:class:`KeepaError` after); 400/402/404/405 raise
    :class:`KeepaAPIError` at once.  Tokens further away than
    ``bucket.max_wait_s`` raise :class:`Denied` (``wait_too_long``): free
    the worker and retry later.

    The access key is the client's ``keepa_key``, else ``keepa.key_file``,
    else ``$TOKENMGR_KEEPA_KEY``; it never appears in an exception, a log
    line or a repr.  Like the client, a Keepa may be shared by threads.
    """

    def __init__(self, client: Client) -> None:
        if not isinstance(client, Client):
            raise TypeError("Keepa needs a tokenmgr.Client, not %s" % type(client).__name__)
        self.client = client
        h = client._handle()
        with h:
            _keepa_handle(client, h)  # a missing key is an error now
            self.base_url: str = client._get(h, "keepa.base_url")

    def __repr__(self) -> str:
        return "<tokenmgr.Keepa %s pool=%r>" % (self.base_url, self.client.pool)

    def request(self, path: str, params: Params = None, cost: Optional[int] = None) -> Response:
        """GET ``path`` with ``params`` (a dict or pairs; a list value is
        joined with commas, a bool is 1/0), paying ``cost`` tokens (default:
        :func:`estimate_cost`).  Returns the :class:`Response`."""
        if not isinstance(path, str) or not path:
            raise TypeError("path must be non-empty text, e.g. '/product'")
        pairs = _pairs(params)
        est = estimate_cost(path, pairs) if cost is None else _int("cost", cost)
        flat: List[Optional[bytes]] = []
        for name, v in pairs:
            flat += [name.encode(), v.encode()]
        flat.append(None)
        arr = (c_char_p * len(flat))(*flat)
        js, body, blen = c_void_p(), c_void_p(), c_size_t()
        bpath = path.encode()

        def undo(rc: Any) -> None:
            if rc == _lib.OK:
                L.tkm_free(js)
                L.tkm_free(body)

        _keepa_call(
            self.client,
            lambda kc: L.tkm_keepa_request_json(kc, bpath, arr, est, byref(js), byref(body), byref(blen)),
            undo,
        )
        try:
            data = string_at(body.value, blen.value) if body.value else b""
        finally:
            L.tkm_free(body)
        f = _lib.take_json(js)
        return Response(
            body=data,
            http_status=f["http_status"],
            tokens_left=f["tokens_left"],
            tokens_consumed=f["tokens_consumed"],
            refill_in_ms=f["refill_in_ms"],
            refill_rate=f["refill_rate"],
            timestamp_ms=f["timestamp_ms"],
            processing_ms=f["processing_ms"],
            token_flow_reduction=float(f["token_flow_reduction"]),
            error=f["error"],
            attempts=f["attempts"],
            http_429s=f["http_429s"],
        )

    def sync(self, force: bool = False) -> Dict[str, Any]:
        """The same as :meth:`Client.sync_from_keepa`."""
        return self.client.sync_from_keepa(force)
