"""The exceptions of the tokenmgr binding.

Every error the library reports is a :class:`TokenmgrError` carrying the
library's own one-line message (``str(e)``), its status code (``e.code``,
an ``int`` of ``enum tkm_code``) and the code's name (``e.code_name``).

==========================  ====================================  ============================
exception                   raised when                           library status
==========================  ====================================  ============================
:class:`ConfigError`        a configuration (file, option,        ``TKM_ECONFIG``, ``TKM_EIO``
                            environment, access key) is refused
:class:`UnknownOptionError` an option keyword the options table   (binding; also a
                            does not know                         ``TypeError``)
:class:`Unavailable`        Redis cannot be reached, timed out    ``TKM_EREDIS``
                            or failed: no call may be made
:class:`Denied`             no tokens now (``reason``,            a denial, ``TKM_EWAIT``
                            ``retry_after``)
:class:`GrantError`         a grant unknown, expired, or already  ``TKM_ENOGRANT``
                            completed or released
:class:`InvalidArgument`    a bad value (a negative cost...);     ``TKM_EINVAL``
                            also a ``ValueError``
:class:`Cancelled`          a wait ended by ``Client.cancel()``,  ``TKM_ECANCELED``
                            ``close()`` or an interrupt
:class:`ClientClosed`       a ``Client`` used after ``close()``   (binding)
:class:`KeepaError`         the API could not be reached or       ``TKM_EHTTP``
                            answered garbage, retries exhausted
:class:`KeepaAPIError`      the API refused the request (400,     ``TKM_EAPI``
                            402, 404, 405)
==========================  ====================================  ============================

``TKM_ENOMEM`` is raised as Python's :class:`MemoryError`; other codes
(``TKM_EPROTO``, ``TKM_ESTATE``, ``TKM_ENOTFOUND``) as :class:`TokenmgrError`.
"""
from __future__ import annotations

from typing import Optional

__all__ = [
    "TokenmgrError",
    "ConfigError",
    "UnknownOptionError",
    "Unavailable",
    "Denied",
    "GrantError",
    "InvalidArgument",
    "Cancelled",
    "ClientClosed",
    "KeepaError",
    "KeepaAPIError",
]

# enum tkm_code (lib/include/tokenmgr.h): append-only, so these never move.
CODE_NAMES = (
    "TKM_OK",
    "TKM_EINVAL",
    "TKM_ECONFIG",
    "TKM_EREDIS",
    "TKM_EPROTO",
    "TKM_ESTATE",
    "TKM_ENOGRANT",
    "TKM_ENOMEM",
    "TKM_EIO",
    "TKM_EHTTP",
    "TKM_EAPI",
    "TKM_EWAIT",
    "TKM_ECANCELED",
    "TKM_ENOTFOUND",
)


class TokenmgrError(Exception):
    """Base class: the library's one-line message and its status code."""

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def code_name(self) -> Optional[str]:
        """The status code's name (``"TKM_EREDIS"``...), None when none."""
        if self.code is None:
            return None
        if 0 <= self.code < len(CODE_NAMES):
            return CODE_NAMES[self.code]
        return "TKM_E%d" % self.code


class ConfigError(TokenmgrError):
    """The configuration was refused: the message names the file, line and
    column, the option, or the environment variable."""


class UnknownOptionError(ConfigError, TypeError):
    """A keyword option that the options table does not know (with the
    library's "did you mean" hint)."""


class Unavailable(TokenmgrError):
    """Redis is unreachable, timed out or failed.  The library fails
    closed: nothing was reserved, no API call may be made; retry later."""


class Denied(TokenmgrError):
    """No tokens for this call now.

    ``reason`` is the library's name for it: ``"recharging"``,
    ``"insufficient"``, ``"deficit_limit"``, ``"need_sync"`` or
    ``"wait_too_long"``.  ``retry_after`` is the number of seconds after
    which refill may cure it, or None when refill cannot (no state yet, a
    refill rate of 0) or it is unknown.  ``tokens`` is the balance the
    decision saw (None when unknown)."""

    def __init__(
        self,
        message: str,
        reason: str,
        retry_after: Optional[float],
        tokens: Optional[int] = None,
        recharge_mode: Optional[bool] = None,
        code: Optional[int] = None,
    ) -> None:
        super().__init__(message, code)
        self.reason = reason
        self.retry_after = retry_after
        self.tokens = tokens
        self.recharge_mode = recharge_mode


class GrantError(TokenmgrError):
    """The grant is not live: never granted, expired (its lease outlived
    ``bucket.lease_ttl_s``), or already completed or released."""


class InvalidArgument(TokenmgrError, ValueError):
    """An argument the library refuses (a negative cost, a cost no balance
    could allow, a busy period outside 1..86400 s...)."""


class Cancelled(TokenmgrError):
    """A wait was cancelled (``Client.cancel()``, ``close()``, or an
    interrupt such as Ctrl-C while the main thread waited)."""


class ClientClosed(TokenmgrError):
    """The ``Client`` was used after ``close()``."""


class KeepaError(TokenmgrError):
    """The Keepa API could not be reached, or answered something that is
    not an answer, after the configured retries."""


class KeepaAPIError(KeepaError):
    """The Keepa API refused the request itself (HTTP 400, 402, 404, 405):
    retrying the same request will not help."""
