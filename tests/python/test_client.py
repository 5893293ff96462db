"""Client, Grant and the exceptions, against a private redis-server."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

import harness
import tokenmgr
from tokenmgr import (
    Cancelled,
    ClientClosed,
    Denied,
    GrantError,
    InvalidArgument,
    TokenmgrError,
    Unavailable,
)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_acquire_complete_release(client_factory):
    c = client_factory()
    c.sync(100, 10)
    g = c.acquire(12, wait=False)
    assert g.id and g.state == "live" and g.cost == 12 and g.tokens == 88
    st = c.status()
    assert (st["inflight"], st["inflight_tokens"]) == (1, 12)
    r = g.complete(consumed=15)
    assert r == tokenmgr.Reconcile(tokens=85, report_applied=False, report_stale=False)
    assert g.state == "completed" and c.status()["inflight"] == 0

    g = c.acquire(5)
    assert g.release().tokens == 85 and g.state == "released"

    # A report newer than any applied sets the balance (minus calls in flight).
    other = c.acquire(4)
    g = c.acquire(10)
    r = g.complete(consumed=10, tokens_left=50, timestamp=now_ms())
    assert r.report_applied and r.tokens == 50 - 4
    # An older report is stale: the estimate's difference applies instead.
    r = other.complete(consumed=4, tokens_left=999, timestamp=now_ms() - 5000)
    assert r.report_stale and not r.report_applied and r.tokens == 46


def test_grant_context_manager(client_factory):
    c = client_factory()
    c.sync(100, 10)
    # Left normally without complete(): completed with the estimate.
    with c.acquire(7) as g:
        assert g.state == "live"
    assert g.state == "completed"
    st = c.status()
    assert st["tokens"] == 93 and st["inflight"] == 0

    # Left by an exception: released (the call is taken as not made), and
    # the exception is the block's.
    with pytest.raises(ZeroDivisionError):
        with c.acquire(20) as g:
            1 / 0
    assert g.state == "released"
    st = c.status()
    assert st["tokens"] == 93 and st["inflight"] == 0

    # Completed inside the block: nothing more on exit.
    with c.acquire(3) as g:
        g.complete(consumed=1)
    assert g.state == "completed" and c.status()["tokens"] == 92


def test_grant_ended_twice(client_factory):
    c = client_factory(bucket_lease_ttl_s=1)
    c.sync(100, 10)
    g = c.acquire(5)
    g.complete()
    with pytest.raises(GrantError, match="grant %s was already completed" % g.id):
        g.complete()
    with pytest.raises(GrantError, match="already completed; it cannot be released"):
        g.release()
    g = c.acquire(5)
    g.release()
    with pytest.raises(GrantError, match="already released"):
        g.complete()
    # A lease that expired: the library's own message, code TKM_ENOGRANT.
    g = c.acquire(5)
    time.sleep(1.3)
    c.acquire(1).release()  # a script run sweeps expired leases
    with pytest.raises(GrantError) as e:
        g.complete(consumed=5)
    assert e.value.code_name == "TKM_ENOGRANT" and g.state == "expired"
    assert str(e.value) and "grant" in str(e.value)


def test_denials(client_factory):
    c = client_factory(bucket_soft_floor=20, bucket_recharge_target=50, bucket_max_deficit=-30)
    with pytest.raises(Denied) as e:
        c.acquire(5)  # no state yet: need_sync, which refill cannot cure
    assert e.value.reason == "need_sync" and e.value.retry_after is None
    assert isinstance(e.value, TokenmgrError) and "sync" in str(e.value)

    c.sync(0, 10)
    with pytest.raises(Denied) as e:
        c.acquire(5, wait=False)
    assert e.value.reason == "insufficient" and 0 < e.value.retry_after <= 60
    assert e.value.tokens == 0

    c.sync(25, 10)
    with pytest.raises(Denied) as e:
        c.acquire(100, wait=False)  # 25 - 100 passes the deficit limit
    assert e.value.reason == "deficit_limit"

    c.acquire(10, wait=False).complete()  # leaves 15 < 20: recharge starts
    with pytest.raises(Denied) as e:
        c.acquire(11, wait=False)
    assert e.value.reason == "recharging" and e.value.recharge_mode is True
    assert e.value.retry_after > 0

    # A wait longer than allowed is refused at once, with the wait.
    t0 = time.monotonic()
    with pytest.raises(Denied) as e:
        c.acquire(11, wait=0.2)
    assert e.value.reason == "wait_too_long" and e.value.retry_after > 0.2
    assert time.monotonic() - t0 < 1


def test_blocking_acquire_waits_for_refill(client_factory):
    c = client_factory(bucket_refill_period_ms=300, bucket_soft_floor=0, bucket_recharge_target=0, bucket_max_deficit=0)
    c.sync(0, 20, refill_in=300)
    t0 = time.monotonic()
    g = c.acquire(5, wait=3)
    waited = time.monotonic() - t0
    assert g.state == "live" and 0.05 < waited < 2
    g.complete()
    # The library beat while it waited.
    assert any(w["alive"] for w in c.workers())


def test_bad_costs(client_factory):
    c = client_factory()
    c.sync(100, 10)
    for bad in (1.5, "3", True, None):
        with pytest.raises(TypeError, match="cost must be an integer"):
            c.acquire(bad)
    with pytest.raises(InvalidArgument, match="cost -1 is negative") as e:
        c.acquire(-1)
    assert e.value.code_name == "TKM_EINVAL" and isinstance(e.value, ValueError)
    with pytest.raises(InvalidArgument):
        c.acquire(10**9)  # no balance could ever allow it
    with pytest.raises(InvalidArgument, match="out of range"):
        c.acquire(2**70)
    with pytest.raises(TypeError):
        c.acquire(1, wait="soon")
    with pytest.raises(InvalidArgument):
        c.acquire(1, wait=-1)
    g = c.acquire(2)
    with pytest.raises(TypeError, match="consumed must be an integer"):
        g.complete(consumed=2.5)
    with pytest.raises(InvalidArgument, match="go together"):
        g.complete(consumed=2, tokens_left=5)
    assert g.state == "live"
    g.complete()


def test_redis_away_is_unavailable_and_comes_back(redis, client_factory):
    c = client_factory(redis_timeout_ms=300)
    c.sync(100, 10)
    redis.kill()
    t0 = time.monotonic()
    for call in (lambda: c.acquire(1), c.status, lambda: c.heartbeat("x"), c.workers):
        with pytest.raises(Unavailable) as e:
            call()
        assert e.value.code_name == "TKM_EREDIS" and "Redis" in str(e.value)
    assert time.monotonic() - t0 < 5
    redis.start()  # empty: the pool has no state
    with pytest.raises(Denied, match="need_sync"):
        c.acquire(1)
    c.sync(50, 10)
    c.acquire(1).complete()


def test_closed_client(client_factory):
    c = client_factory()
    c.sync(100, 10)
    g = c.acquire(1)
    c.close()
    c.close()  # idempotent
    assert c.closed and "closed" in repr(c)
    for call in (lambda: c.acquire(1), c.status, c.workers, lambda: c.heartbeat(), lambda: c.sync(1, 1), g.complete):
        with pytest.raises(ClientClosed, match="closed"):
            call()
    with client_factory() as c2:
        c2.sync(5, 1)
    with pytest.raises(ClientClosed):
        c2.status()


def test_heartbeats_workers_and_status_keys(redis, client_factory, tmp_path):
    c = client_factory(worker_id="py-w1", heartbeat_min_interval_ms=0)
    c.sync(100, 10)
    c.heartbeat("phase one")
    ws = c.workers()
    assert [(w["id"], w["phase"], w["alive"]) for w in ws] == [("py-w1", "phase one", True)]
    c.heartbeat("db write", busy_for=30)
    (w,) = c.workers()
    assert w["phase"] == "db write" and 29 <= w["busy_for_s"] <= 30 and w["busy_until_ms"] > 0
    with pytest.raises(InvalidArgument, match="1..86400"):
        c.heartbeat("x", busy_for=0)
    # The CLI's JSON and the binding's are the same views.
    cfg = harness.write_config(str(tmp_path / "t.yaml"), redis.url, "t")
    st, cli_st = c.status(), harness.cli_json(cfg, "status")
    assert set(st) == set(cli_st) and st["workers_total"] == cli_st["workers_total"] == 1
    cli_ws = harness.cli_json(cfg, "workers")["workers"]
    assert [w["id"] for w in cli_ws] == ["py-w1"] and set(cli_ws[0]) == set(w)
    # The default id is "<hostname>:<pid>"; a tool never beats.
    d = client_factory()
    assert d.worker_id == "%s:%d" % (socket.gethostname(), os.getpid())
    quiet = client_factory(worker_id="tool", heartbeats=False)
    quiet.heartbeat("never")
    assert "tool" not in [w["id"] for w in c.workers()]


def test_sync_recharge_and_options(client_factory):
    c = client_factory(bucket_soft_floor=5, bucket_recharge_target=30)
    r = c.sync(40, 10, refill_in=1000, timestamp=now_ms())
    assert r.report_applied and r.tokens == 40
    assert c.sync(7, 10, timestamp=now_ms() - 10000).report_stale
    c.sync(20, 10, timestamp=now_ms())  # below the recharge target (30)
    c.recharge(True)
    assert c.status()["recharge_mode"] is True
    c.recharge(False)
    st = c.status()
    assert st["recharge_mode"] is False and st["recharge_target"] == 30
    assert c.option("bucket.soft_floor") == 5 and c.option("bucket_recharge_target") == 30
    assert c.pool == "t"


def test_password_never_shown():
    c = tokenmgr.Client(False, redis="redis://:s3cretpw@127.0.0.1:1/0", redis_timeout_ms=100)
    try:
        assert "s3cretpw" not in repr(c) and "***" in repr(c)
        assert "s3cretpw" not in c.option("redis.url")
        with pytest.raises(Unavailable) as e:
            c.status()
        assert "s3cretpw" not in str(e.value)
    finally:
        c.close()


def test_threads_share_one_client(redis, client_factory):
    c = client_factory()
    c.sync(10000, 0)
    errors = []

    def work():
        try:
            for _ in range(50):
                c.acquire(1).complete()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    st = c.status()
    assert st["tokens"] == 10000 - 8 * 50 and st["inflight"] == 0
    # Each thread had a connection of its own; those of ended threads are
    # closed when the next thread opens one.
    assert len(redis.clients()) >= 8
    t = threading.Thread(target=lambda: c.acquire(1).complete())
    t.start()
    t.join()
    assert harness.wait_until(lambda: len(redis.clients()) <= 3, 3), redis.clients()


def test_interrupt_ends_a_wait_in_the_main_thread(client_factory):
    c = client_factory(bucket_max_wait_s=60)
    c.sync(0, 10, refill_in=20000)  # the next refill is 20 s away
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            c.acquire(5, wait=True)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 5
    assert c.status()["inflight"] == 0
    c.sync(100, 10)  # waits work again afterwards
    c.acquire(5, wait=True).complete()


def test_cancel_and_close_end_waits_in_other_threads(client_factory):
    for how in ("cancel", "close"):
        c = client_factory(bucket_max_wait_s=60)
        c.sync(0, 10, refill_in=20000)
        got = []

        def wait():
            try:
                c.acquire(5, wait=True)
            except TokenmgrError as e:
                got.append(e)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        getattr(c, how)()
        t.join(10)
        assert not t.is_alive() and time.monotonic() - t0 < 5
        assert type(got[0]) is (Cancelled if how == "cancel" else ClientClosed)
        if how == "cancel":
            with pytest.raises(Cancelled):
                c.acquire(5, wait=True)  # sticky


def test_close_from_a_signal_handler_during_a_wait(client_factory):
    """The handler runs in the main thread while that thread waits inside
    the client: close() must not wait for it (no deadlock)."""
    c = client_factory(bucket_max_wait_s=60)
    c.sync(0, 10, refill_in=20000)
    old = signal.signal(signal.SIGUSR1, lambda *_: c.close())
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(ClientClosed):
            c.acquire(5, wait=True)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)
    assert time.monotonic() - t0 < 5 and c.closed
