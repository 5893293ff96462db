"""Loading libtokenmgr.so.0 with ctypes, and the prototypes of the calls the
binding makes.

Only opaque handles and scalars cross this boundary: options are set by
name (tkm_options_set), answers come back as JSON (the library's JSON
views), so no C struct layout is mirrored here.

The library is found by the dynamic loader (LD_LIBRARY_PATH, ld.so.cache,
the system's library folders) as ``libtokenmgr.so.0``, or at the path in
``$TOKENMGR_LIBRARY``.
"""
from __future__ import annotations

import ctypes
import json
import os
from ctypes import (
    POINTER,
    byref,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_void_p,
)
from typing import Any, Optional

from . import errors

SONAME = "libtokenmgr.so.0"
# The library series this binding speaks: MAJOR.MINOR.
SERIES = (0, 1)

# enum tkm_code
OK = 0
EINVAL = 1
ECONFIG = 2
EREDIS = 3
EPROTO = 4
ESTATE = 5
ENOGRANT = 6
ENOMEM = 7
EIO = 8
EHTTP = 9
EAPI = 10
EWAIT = 11
ECANCELED = 12
ENOTFOUND = 13

# tkm_acquire_into / tkm_complete_into flags
INTO_GRANTED = 1
INTO_RECHARGE_MODE = 2
INTO_RECHARGE_EXPIRED = 4
INTO_REPORT_APPLIED = 1
INTO_REPORT_STALE = 2
GRANT_ID_LEN = 64  # > TKM_GRANT_ID_MAX + 1

# enum tkm_option_source
SOURCE_ENV = 2

ERRBUF = 1024

_pp = POINTER(c_void_p)

# name: (restype, argtypes)
_PROTOTYPES = {
    "tkm_version": (c_char_p, []),
    "tkm_strerror": (c_char_p, [c_int]),
    "tkm_free": (None, [c_void_p]),
    # options
    "tkm_options_new": (c_int, [_pp]),
    "tkm_options_free": (None, [c_void_p]),
    "tkm_options_set": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "tkm_options_set_list": (
        c_int,
        [c_void_p, c_char_p, POINTER(c_char_p), c_size_t, c_char_p, c_size_t],
    ),
    "tkm_options_set_worker_id": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "tkm_options_get": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "tkm_options_validate": (c_int, [c_void_p, c_char_p, c_size_t]),
    "tkm_options_from_env": (c_int, [c_void_p, c_char_p, c_size_t]),
    "tkm_config_load_file": (c_int, [c_char_p, c_void_p, c_char_p, c_size_t]),
    "tkm_option_lookup": (c_int, [c_char_p, c_int, c_char_p, c_char_p, c_size_t]),
    "tkm_options_table_json": (c_int, [_pp]),
    # the client
    "tkm_client_open": (c_int, [c_void_p, _pp]),
    "tkm_client_free": (None, [c_void_p]),
    "tkm_errstr": (c_char_p, [c_void_p]),
    "tkm_client_options": (c_void_p, [c_void_p]),
    "tkm_client_worker_id": (c_char_p, [c_void_p]),
    "tkm_client_set_cancel": (None, [c_void_p, POINTER(c_int)]),
    "tkm_client_set_heartbeats": (None, [c_void_p, c_int]),
    "tkm_client_round_trips": (c_int64, [c_void_p]),
    "tkm_acquire_json": (c_int, [c_void_p, c_int64, c_int64, _pp]),
    "tkm_complete_json": (
        c_int,
        [c_void_p, c_char_p, c_int64, c_int, c_int64, c_int64, _pp],
    ),
    "tkm_acquire_into": (
        c_int,
        [c_void_p, c_int64, c_int64, c_char_p, c_size_t, POINTER(c_int64), POINTER(c_int),
         POINTER(c_int64), POINTER(c_int)],
    ),
    "tkm_complete_into": (
        c_int,
        [c_void_p, c_char_p, c_int64, c_int, c_int64, c_int64, POINTER(c_int64), POINTER(c_int)],
    ),
    "tkm_reason_str": (c_char_p, [c_int]),
    "tkm_release_json": (c_int, [c_void_p, c_char_p, _pp]),
    "tkm_sync_json": (c_int, [c_void_p, c_int64, c_int64, c_int64, c_int64, _pp]),
    "tkm_status_json": (c_int, [c_void_p, _pp]),
    "tkm_workers_json": (c_int, [c_void_p, _pp]),
    "tkm_recharge": (c_int, [c_void_p, c_int]),
    "tkm_heartbeat": (c_int, [c_void_p, c_char_p]),
    "tkm_heartbeat_busy": (c_int, [c_void_p, c_char_p, c_int64]),
    # the Keepa client
    "tkm_keepa_open_key": (c_int, [c_void_p, c_char_p, _pp]),
    "tkm_keepa_free": (None, [c_void_p]),
    "tkm_keepa_errstr": (c_char_p, [c_void_p]),
    "tkm_keepa_request_json": (
        c_int,
        [c_void_p, c_char_p, POINTER(c_char_p), c_int64, _pp, _pp, POINTER(c_size_t)],
    ),
    "tkm_keepa_sync_json": (c_int, [c_void_p, c_int, _pp]),
}


class _DlInfo(ctypes.Structure):
    # glibc's Dl_info (dlfcn.h), to name the file the loader picked.
    _fields_ = [
        ("dli_fname", c_char_p),
        ("dli_fbase", c_void_p),
        ("dli_sname", c_char_p),
        ("dli_saddr", c_void_p),
    ]


def _loaded_path(lib: ctypes.CDLL) -> Optional[str]:
    """The path of the file the loader picked for `lib` (dladdr), or None."""
    try:
        process = ctypes.CDLL(None)
        dladdr = process.dladdr
        dladdr.argtypes = [c_void_p, POINTER(_DlInfo)]
        dladdr.restype = c_int
        info = _DlInfo()
        addr = ctypes.cast(lib.tkm_version, c_void_p)
        if dladdr(addr, byref(info)) and info.dli_fname:
            path = os.fsdecode(info.dli_fname)
            return os.path.realpath(path) if os.sep in path else path
    except (AttributeError, OSError):
        pass
    return None


def _load() -> "tuple[ctypes.CDLL, str, str]":
    given = os.environ.get("TOKENMGR_LIBRARY", "")
    if given:
        tried = given + " ($TOKENMGR_LIBRARY)"
    else:
        tried = SONAME + " (the dynamic loader's search path)"
    try:
        lib = ctypes.CDLL(given or SONAME)
    except OSError as e:
        raise ImportError(
            "tokenmgr: cannot load %s: %s; install libtokenmgr or set "
            "TOKENMGR_LIBRARY to its path" % (tried, e),
            path=given or SONAME,
        ) from None
    where = _loaded_path(lib) if hasattr(lib, "tkm_version") else None
    where = where or tried
    try:
        version_fn = lib.tkm_version
    except AttributeError:
        raise ImportError(
            "tokenmgr: %s is not libtokenmgr (it has no tkm_version)" % where,
            path=where,
        ) from None
    version_fn.restype = c_char_p
    version_fn.argtypes = []
    found = (version_fn() or b"").decode("ascii", "replace")
    want = "%d.%d.x" % SERIES
    parts = found.split(".")
    try:
        series = (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        series = None
    if series != SERIES:
        raise ImportError(
            "tokenmgr: %s is libtokenmgr version %s; this binding needs %s "
            "(set TOKENMGR_LIBRARY to the right library)" % (where, found or "?", want),
            path=where,
        )
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                "tokenmgr: %s is libtokenmgr version %s but lacks %s(); this "
                "binding needs a %s library that has it (set TOKENMGR_LIBRARY "
                "to the right library)" % (where, found, name, want),
                path=where,
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    return lib, where, found


lib, PATH, VERSION = _load()


def strerror(code: int) -> str:
    return (lib.tkm_strerror(code) or b"").decode("utf-8", "replace")


def text(b: Optional[bytes]) -> str:
    return (b or b"").decode("utf-8", "replace")


_decode = json.JSONDecoder().decode
_string_at = ctypes.string_at


def take_json(ptr: c_void_p) -> Any:
    """Parse and free a string the library allocated (UTF-8 JSON)."""
    try:
        return _decode(_string_at(ptr.value).decode("utf-8"))
    finally:
        lib.tkm_free(ptr)


_BY_CODE = {
    ECONFIG: errors.ConfigError,
    EIO: errors.ConfigError,
    EREDIS: errors.Unavailable,
    ENOGRANT: errors.GrantError,
    EINVAL: errors.InvalidArgument,
    ECANCELED: errors.Cancelled,
    EHTTP: errors.KeepaError,
    EAPI: errors.KeepaAPIError,
}


def error(code: int, message: str) -> BaseException:
    """The exception for a failed call (TKM_EWAIT is handled by callers)."""
    if not message:
        message = strerror(code)
    if code == ENOMEM:
        return MemoryError(message)
    return _BY_CODE.get(code, errors.TokenmgrError)(message, code)
