"""Options by name: the library's own table, keywords spelled as YAML keys
with ``_`` for ``.`` (``bucket_soft_floor=20`` is ``bucket.soft_floor``).

Every option's name, type, range, default and documentation come from
the library (tkm_options_table_json); values are handed over as text to
tkm_options_set, which checks them exactly as the YAML loader does.
"""
from __future__ import annotations

import ctypes
import os
import re
from ctypes import byref, c_char_p, c_void_p
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _lib
from .errors import ConfigError, UnknownOptionError

L = _lib.lib

# The CLI's default configuration file (CONTRACT.md), read when it exists
# and neither config= nor $TOKENMGR_CONFIG names another.
DEFAULT_CONFIG = "/etc/tokenmgr/tokenmgr.yaml"


def _table() -> List[Dict[str, Any]]:
    out = c_void_p()
    rc = L.tkm_options_table_json(byref(out))
    if rc != _lib.OK:
        raise _lib.error(rc, "")
    return _lib.take_json(out)


TABLE: List[Dict[str, Any]] = _table()
BY_KEY: Dict[str, Dict[str, Any]] = {d["key"]: d for d in TABLE}
BY_KEYWORD: Dict[str, Dict[str, Any]] = {d["key"].replace(".", "_"): d for d in TABLE}
assert len(BY_KEYWORD) == len(TABLE), "two options spell the same keyword"


def keyword_of(key: str) -> str:
    return key.replace(".", "_")


def _unknown(keyword: str) -> UnknownOptionError:
    """The error for an unknown keyword, with the library's hint (its
    lookup on the environment variable's spelling, TOKENMGR_ + the keyword
    in capitals, said back as a keyword)."""
    hint = ctypes.create_string_buffer(256)
    name = "TOKENMGR_" + keyword.upper()
    L.tkm_option_lookup(name.encode(), _lib.SOURCE_ENV, None, hint, len(hint))
    said = re.sub(
        r"TOKENMGR_([A-Z0-9_]+)",
        lambda m: m.group(1).lower(),
        _lib.text(hint.value),
    )
    return UnknownOptionError("unknown option keyword '%s'%s" % (keyword, said))


Value = Union[str, int, float, bool, "os.PathLike[str]", Sequence[str], None]


def _text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value) if not isinstance(value, float) else repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ConfigError(
        "%s: a %s is not a value for it (give text, a number or a boolean)"
        % (key, type(value).__name__)
    )


def _check(rc: int, err: ctypes.Array) -> None:
    if rc != _lib.OK:
        raise _lib.error(rc, _lib.text(err.value))


def set_option(opts: c_void_p, key: str, value: Value) -> None:
    """Set one option (by YAML key) on a tkm_options."""
    err = ctypes.create_string_buffer(_lib.ERRBUF)
    if isinstance(value, (list, tuple)):
        items = [_text(key, v) for v in value]
        arr = (c_char_p * max(1, len(items)))(*[i.encode() for i in items])
        rc = L.tkm_options_set_list(opts, key.encode(), arr, len(items), err, len(err))
    else:
        rc = L.tkm_options_set(opts, key.encode(), _text(key, value).encode(), err, len(err))
    _check(rc, err)


def get_option(opts: c_void_p, key: str) -> Any:
    """An option's value, typed by the table (integer, number, boolean,
    list, string)."""
    d = BY_KEY.get(key)
    if d is None:
        raise _unknown(keyword_of(key))
    buf = ctypes.create_string_buffer(16384)
    rc = L.tkm_options_get(opts, key.encode(), buf, len(buf))
    if rc != _lib.OK:
        raise _lib.error(rc, "%s: cannot read it (%s)" % (key, _lib.strerror(rc)))
    v = _lib.text(buf.value)
    t = d["type"]
    if t == "integer":
        return int(v)
    if t == "number":
        return float(v)
    if t == "boolean":
        return v == "true"
    if t == "list":
        return v.split(",") if v else []
    return v


def config_path(config: Union[None, bool, str, "os.PathLike[str]"]) -> Optional[str]:
    """The configuration file to read: config=, else $TOKENMGR_CONFIG, else
    /etc/tokenmgr/tokenmgr.yaml when it exists; None: no file (config=False
    or "")."""
    if config is False or config == "":
        return None
    if config is None or config is True:
        env = os.environ.get("TOKENMGR_CONFIG", "")
        if env:
            return env
        return DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None
    return os.fspath(config)


def build(
    config: Union[None, bool, str, "os.PathLike[str]"],
    explicit: Mapping[str, Value],
    keywords: Mapping[str, Value],
    worker_id: Optional[str],
    base: Optional[Mapping[str, Value]] = None,
) -> c_void_p:
    """A validated tkm_options on the heap: the defaults, then `base` (by
    YAML key: defaults of a front end), the configuration file, the
    environment (TOKENMGR_*), `explicit` (by YAML key) and `keywords`
    (bucket_soft_floor=...), in that order, as the command-line tool does
    (default < file < environment < flag).  The caller frees it with
    tkm_options_free."""
    for kw in keywords:
        if kw not in BY_KEYWORD:
            raise _unknown(kw)
    opts = c_void_p()
    rc = L.tkm_options_new(byref(opts))
    if rc != _lib.OK:
        raise _lib.error(rc, "")
    try:
        err = ctypes.create_string_buffer(_lib.ERRBUF)
        for key, value in (base or {}).items():
            if value is not None:
                set_option(opts, key, value)
        path = config_path(config)
        if path is not None:
            _check(L.tkm_config_load_file(os.fsencode(path), opts, err, len(err)), err)
        _check(L.tkm_options_from_env(opts, err, len(err)), err)
        for key, value in explicit.items():
            if value is not None:
                set_option(opts, key, value)
        for kw, value in keywords.items():
            if value is not None:
                set_option(opts, BY_KEYWORD[kw]["key"], value)
        if worker_id is not None:
            if not isinstance(worker_id, str):
                raise ConfigError("worker_id must be text, not %s" % type(worker_id).__name__)
            _check(L.tkm_options_set_worker_id(opts, worker_id.encode(), err, len(err)), err)
        _check(L.tkm_options_validate(opts, err, len(err)), err)
    except BaseException:
        L.tkm_options_free(opts)
        raise
    return opts


def describe() -> str:
    """The options as a docstring section (from the library's table)."""
    lines = []
    for d in TABLE:
        what = d["type"]
        if d["range"]:
            what += " " + d["range"]
        if d["unit"]:
            what += " " + d["unit"]
        lines.append(
            "        %s (%s; %s), default %s\n            %s"
            % (keyword_of(d["key"]), d["key"], what, d["default"], d["doc"])
        )
    return "\n".join(lines)
