"""tokenmgr: one Keepa-style token bucket shared by every worker, from Python.

A binding (the standard library's ctypes) over ``libtokenmgr.so.0``, the
C library that keeps the bucket in Redis and decides every grant in one
atomic Lua script.  Python workers and C workers share one pool.

    import tokenmgr

    with tokenmgr.Client(redis="unix:///run/redis/redis.sock") as client:
        with client.acquire(12) as grant:          # blocks up to max_wait_s
            answer = call_the_api()
            grant.complete(consumed=answer["tokensConsumed"],
                           tokens_left=answer["tokensLeft"],
                           timestamp=answer["timestamp"])
        client.heartbeat("batch 3/10")

        keepa = tokenmgr.Keepa(client)             # acquire, GET, complete
        r = keepa.request("/product", {"domain": 1, "asin": ["B000000001"]})
        products = r.json()["products"]

The library is found by the dynamic loader as ``libtokenmgr.so.0``, or at
``$TOKENMGR_LIBRARY``.  A seed worker moves over with one import:
``from tokenmgr.compat import TokenManager``.
"""
from ._lib import PATH as library_path
from ._lib import VERSION as library_version
from . import errors as _errors
from .client import Client, Grant, Reconcile
from .errors import (
    Cancelled,
    ClientClosed,
    ConfigError,
    Denied,
    GrantError,
    InvalidArgument,
    KeepaAPIError,
    KeepaError,
    TokenmgrError,
    Unavailable,
    UnknownOptionError,
)
from .keepa import Keepa, Response, estimate_cost

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Grant",
    "Reconcile",
    "Keepa",
    "Response",
    "estimate_cost",
    "library_path",
    "library_version",
    "__version__",
    *_errors.__all__,
]
