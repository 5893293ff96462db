"""Fixtures for the binding's tests: real parts only (harness.py)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No TOKENMGR_* of the machine leaks into a test (the library is
    TOKENMGR_LIBRARY, kept), and no system configuration is read."""
    for k in list(os.environ):
        if k.startswith("TOKENMGR_") and k != "TOKENMGR_LIBRARY":
            monkeypatch.delenv(k)
    monkeypatch.delenv("REDIS_URL", raising=False)
    yield


@pytest.fixture
def redis():
    r = harness.Redis()
    yield r
    r.close()


@pytest.fixture
def fake():
    f = harness.FakeKeepa("--rate", "20", "--period-ms", "500", "--balance", "100", "--latency-ms", "5-10")
    yield f
    f.close()


@pytest.fixture
def client_factory(redis):
    """Client(...) on the private Redis (config=False: no file); closed
    after the test."""
    import tokenmgr

    made = []

    def make(**kw):
        kw.setdefault("pool", "t")
        kw.setdefault("redis", redis.url)
        c = tokenmgr.Client(False, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
