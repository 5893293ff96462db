"""fork(): a child uses the parent's Client with a connection of its own,
and parent and child both keep working (Celery's prefork pool forks after
import)."""
from __future__ import annotations

import json
import multiprocessing
import os
import select
import signal
import socket
import traceback

import pytest

import tokenmgr

PAIRS = 300


def readline(f, pid: int, timeout: float = 30) -> str:
    """A line from the child, or fail (and kill it) when none comes: a
    child sharing the parent's socket hangs rather than errs."""
    if not select.select([f], [], [], timeout)[0]:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child said nothing for %d s (a shared connection?)" % timeout)
    return f.readline()


def _child(c: tokenmgr.Client, write_fd: int, go_fd: int) -> None:
    """In the child: announce, wait for the parent's go, run pairs and
    report.  Never returns (os._exit): pytest must not run here."""
    try:
        c.heartbeat("child")
        os.write(write_fd, b"ready\n")
        os.read(go_fd, 1)
        for _ in range(PAIRS):
            c.acquire(1, wait=False).complete()
        out = {"worker_id": c.worker_id, "pid": os.getpid(), "ok": True}
        c.close()  # closes the child's connection only
    except BaseException:
        out = {"ok": False, "error": traceback.format_exc()}
    os.write(write_fd, (json.dumps(out) + "\n").encode())
    os._exit(0)


def test_child_gets_its_own_connection_and_both_work(redis, client_factory):
    c = client_factory(heartbeat_min_interval_ms=0)
    c.sync(100000, 0)
    c.heartbeat("parent")
    parent_conns = {d["id"] for d in redis.clients()}
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(c, w, go_r)
    os.close(w)
    os.close(go_r)
    try:
        _parent(c, redis, pid, os.fdopen(r), go_w, parent_conns)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _parent(c, redis, pid, reader, go_w, parent_conns) -> None:
    assert readline(reader, pid).strip() == "ready"
    # The child is connected, on a connection of its own.
    during = {d["id"] for d in redis.clients()}
    assert parent_conns <= during and len(during - parent_conns) == 1
    # Both run pairs at the same time: a shared socket would interleave
    # replies and fail (or hang) one of them.
    os.write(go_w, b"g")
    for _ in range(PAIRS):
        c.acquire(1, wait=False).complete()
    report = json.loads(readline(reader, pid))
    assert report["ok"], report.get("error")
    # The child was a worker of its own ("<hostname>:<child pid>").
    assert report["worker_id"] == "%s:%d" % (socket.gethostname(), report["pid"])
    assert c.worker_id == "%s:%d" % (socket.gethostname(), os.getpid())
    assert {w["id"]: w["phase"] for w in c.workers()} == {
        c.worker_id: "parent",
        report["worker_id"]: "child",
    }
    # The child's close() did not touch the parent's connections.
    assert parent_conns <= {d["id"] for d in redis.clients()}
    st = c.status()
    assert st["tokens"] == 100000 - 2 * PAIRS and st["inflight"] == 0
    c.acquire(1).complete()


_pool_client = None


def _task(n: int) -> dict:
    g = _pool_client.acquire(1 + n % 3)
    g.complete()
    _pool_client.heartbeat("task %d" % n)
    return {"worker": _pool_client.worker_id, "pid": os.getpid()}


def test_prefork_pool_of_processes(redis, client_factory):
    """The Celery shape: a module-level client opened (and used) before the
    pool forks its children, then used by every task."""
    global _pool_client
    _pool_client = client_factory(heartbeat_min_interval_ms=0)
    _pool_client.sync(100000, 0)
    _pool_client.acquire(1).complete()
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_task, range(40), chunksize=1)
    pids = {r["pid"] for r in results}
    assert len(pids) >= 2 and os.getpid() not in pids
    assert all(r["worker"].endswith(":%d" % r["pid"]) for r in results)
    st = _pool_client.status()
    assert st["inflight"] == 0
    assert st["tokens"] == 100000 - 1 - sum(1 + n % 3 for n in range(40))
    ids = {w["id"] for w in _pool_client.workers()}
    assert {r["worker"] for r in results} <= ids
    _pool_client.acquire(1).complete()  # the parent still works


def test_a_keepa_client_after_fork(redis, client_factory, fake):
    c = client_factory(keepa_key="KEYFORK1", keepa_base_url=fake.url, bucket_refill_period_ms=500)
    k = tokenmgr.Keepa(c)
    k.request("/product", {"asin": ["B000000001"]})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            resp = k.request("/product", {"asin": ["B000000002"]})
            os.write(w, b"%d\n" % resp.http_status)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        assert readline(f, pid).strip() == "200"
    os.waitpid(pid, 0)
    assert k.request("/product", {"asin": ["B000000003"]}).http_status == 200
    assert fake.state("KEYFORK1")["requests_429"] == 0
