"""The real parts the binding's tests run against, one class each: a private
redis-server on a Unix socket (never port 6379), the fake Keepa server
(build/tests/fake_keepa), collectd with the tokenmgr plugin, and the
build's programs (the tokenmgr CLI, the C keepa_worker).

Paths come from the environment CTest sets (tests/CMakeLists.txt):
TKM_BUILD_DIR, TKM_SOURCE_DIR, TKM_FAKE_KEEPA, TKM_WORKER, TKM_CLI,
TKM_PLUGIN_DIR, TKM_COLLECTD.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Sequence

SOURCE_DIR = os.environ.get("TKM_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("TKM_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
FAKE_KEEPA = os.environ.get("TKM_FAKE_KEEPA", os.path.join(BUILD_DIR, "tests", "fake_keepa"))
C_WORKER = os.environ.get("TKM_WORKER", os.path.join(BUILD_DIR, "keepa_worker"))
CLI = os.environ.get("TKM_CLI", os.path.join(BUILD_DIR, "tokenmgr"))
PLUGIN_DIR = os.environ.get("TKM_PLUGIN_DIR", os.path.join(BUILD_DIR, "plugin"))
COLLECTD = os.environ.get("TKM_COLLECTD", "/usr/sbin/collectd")
PY_WORKER = os.path.join(SOURCE_DIR, "examples", "python_worker.py")


def system_env() -> Dict[str, str]:
    """The environment for Debian's programs (redis-server, redis-cli): not
    the ASan runtime that a sanitizer build preloads into Python."""
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    return e


def wait_until(pred, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


def stop_process(p: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 5.0) -> Optional[int]:
    if p.poll() is not None:
        return p.returncode
    try:
        os.kill(p.pid, signal.SIGCONT)
        p.send_signal(sig)
        return p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()
    except ProcessLookupError:
        return p.wait()


class Redis:
    """redis-server on a Unix socket in a temporary folder."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tkm-pyredis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.url = "unix://" + self.sock
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(
            [
                os.environ.get("TKM_REDIS_SERVER", "redis-server"),
                "--port", "0",
                "--unixsocket", self.sock,
                "--unixsocketperm", "700",
                "--dir", self.dir,
                "--save", "",
                "--appendonly", "no",
                "--logfile", os.path.join(self.dir, "redis.log"),
                "--daemonize", "no",
            ],
            stdin=subprocess.DEVNULL, env=system_env(),
        )
        if not wait_until(self._accepts, 10):
            raise RuntimeError("redis-server did not start (see %s/redis.log)" % self.dir)

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("redis-server exited at start (see %s/redis.log)" % self.dir)
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def kill(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def cli(self, *args: str) -> str:
        r = subprocess.run(
            ["redis-cli", "-s", self.sock] + list(args),
            capture_output=True, text=True, timeout=10, check=True, env=system_env(),
        )
        return r.stdout.strip()

    def clients(self) -> List[Dict[str, str]]:
        """CLIENT LIST, one dict per connection (this query's own excluded)."""
        out = []
        for line in self.cli("CLIENT", "LIST").splitlines():
            d = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if d.get("cmd") != "client|list" and d.get("cmd") != "client":
                out.append(d)
        return out

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class FakeKeepa:
    """build/tests/fake_keepa on a free loopback port, and its admin API."""

    def __init__(self, *args: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="tkm-pyfake-")
        self.out = open(os.path.join(self.dir, "out"), "w+")
        self.proc = subprocess.Popen(
            [FAKE_KEEPA, "--port", "0"] + list(args),
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.url = ""
        if not wait_until(self._ready, 5):
            self.close()
            raise RuntimeError("fake_keepa did not start")

    def _ready(self) -> bool:
        self.out.seek(0)
        for line in self.out.read().splitlines():
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].strip()
                return True
        return False

    def get(self, path: str, **params: Any) -> Dict[str, Any]:
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen("%s%s%s" % (self.url, path, "?" + q if q else ""), timeout=10) as r:
            return json.loads(r.read())

    def state(self, key: Optional[str] = None) -> Dict[str, Any]:
        return self.get("/admin/state", **({"key": key} if key else {}))

    def set(self, **kw: Any) -> Dict[str, Any]:
        return self.get("/admin/set", **kw)

    def reset_counters(self, key: Optional[str] = None) -> Dict[str, Any]:
        return self.get("/admin/reset_counters", **({"key": key} if key else {}))

    def fault(self, name: str, on: bool, **kw: Any) -> Dict[str, Any]:
        return self.get("/admin/fault", name=name, on=int(on), **kw)

    def close(self) -> None:
        stop_process(self.proc)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def write_config(path: str, redis_url: str, pool: str, keepa_url: Optional[str] = None, **sections: Dict[str, Any]) -> str:
    """A YAML configuration: pool, redis.url, keepa.base_url, and the given
    sections ({"bucket": {"soft_floor": 10}, ...})."""
    lines = ["pool: %s" % pool, "redis:", "  url: %s" % redis_url]
    lines += ["  %s: %s" % kv for kv in sections.pop("redis", {}).items()]
    if keepa_url:
        sections.setdefault("keepa", {})["base_url"] = keepa_url
    for name, values in sections.items():
        lines.append("%s:" % name)
        lines += ["  %s: %s" % kv for kv in values.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def cli(config: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The tokenmgr command-line tool on `config`."""
    return subprocess.run([CLI, "--config", config] + list(args), capture_output=True, text=True, timeout=30, check=check)


def cli_json(config: str, *args: str) -> Any:
    return json.loads(cli(config, *args, "--json").stdout)


def python(code: str, env: Optional[Dict[str, str]] = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python (this one) that imports the binding."""
    e = dict(os.environ)
    if env is not None:
        e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=timeout)


def collectd_conf(values: Dict[str, str]) -> str:
    """tests/fixtures/collectd.conf.in rendered as fx_collectd_conf does:
    ## lines dropped, @NAME@ replaced, @?NAME@ lines kept only when NAME has
    a value (the one collectd.conf template of every test)."""
    out = []
    with open(os.path.join(SOURCE_DIR, "tests", "fixtures", "collectd.conf.in")) as f:
        for line in f.read().splitlines():
            if line.startswith("##"):
                continue
            m = re.match(r"^@\?([A-Z_]+)@(.*)$", line)
            if m:
                if not values.get(m.group(1)):
                    continue
                line = m.group(2)
            for name in re.findall(r"@([A-Z_]+)@", line):
                if not values.get(name):
                    raise ValueError("collectd.conf.in: no value for @%s@" % name)
                line = line.replace("@%s@" % name, values[name])
            out.append(line)
    return "\n".join(out) + "\n"


class Collectd:
    """collectd -f with csv and the tokenmgr plugin, in a private BaseDir,
    configured from the shared template (collectd_conf)."""

    HOST = "tkmpy"

    def __init__(self, pool_block: str, interval: float = 0.5) -> None:
        self.dir = tempfile.mkdtemp(prefix="tkm-pycollectd-")
        self.conf = os.path.join(self.dir, "collectd.conf")
        plugin_conf = os.path.join(self.dir, "tokenmgr.conf")
        with open(plugin_conf, "w") as f:
            f.write("<Plugin tokenmgr>\n%s</Plugin>\n" % pool_block)
        with open(self.conf, "w") as f:
            f.write(collectd_conf({
                "HOSTNAME": self.HOST,
                "BASEDIR": self.dir,
                "INTERVAL": "%g" % interval,
                "STOCK_PLUGIN_DIR": os.environ.get("TKM_COLLECTD_STOCK_DIR", "/usr/lib/collectd"),
                "TYPESDB": os.environ.get("TKM_COLLECTD_TYPESDB", ""),
                "PLUGIN_DIR": PLUGIN_DIR,
                "PLUGIN_CONF": plugin_conf,
            }))
        env = system_env()
        if os.environ.get("TKM_COLLECTD_PRELOAD"):
            env["LD_PRELOAD"] = os.environ["TKM_COLLECTD_PRELOAD"]
        self.proc = subprocess.Popen(
            [COLLECTD, "-f", "-C", self.conf],
            stdout=open(os.path.join(self.dir, "collectd.out"), "w"),
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        log = os.path.join(self.dir, "collectd.log")
        if not wait_until(lambda: os.path.exists(log) and "Initialization complete" in open(log).read(), 15):
            self.close()
            raise RuntimeError("collectd did not start (see %s)" % self.dir)

    def files(self, pool: str, pattern: str) -> List[str]:
        return sorted(glob.glob(os.path.join(self.dir, "csv", self.HOST, "tokenmgr-" + pool, pattern)))

    # A metric's csv files: the plugin's own collectd type ("workers_alive",
    # CONTRACT.md), or the stock type and an instance ("count-workers_alive").
    STOCK = {"workers_alive": "count", "heartbeat_age": "duration", "tokens": "gauge", "inflight": "count"}

    def metric_files(self, pool: str, metric: str) -> List[str]:
        own = self.files(pool, metric + "-[0-9]*")
        stock = self.files(pool, "%s-%s-[0-9]*" % (self.STOCK.get(metric, "gauge"), metric))
        return own + stock

    def values(self, pool: str, metric: str) -> List[float]:
        """Every value of a single-value metric (csv lines: epoch,value)."""
        out: List[float] = []
        for path in self.metric_files(pool, metric):
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(",")
                    if len(parts) == 2 and parts[0][:1].isdigit():
                        try:
                            out.append(float(parts[1]))
                        except ValueError:
                            pass
        return out

    def worker_series(self, pool: str) -> List[str]:
        """The worker ids of the per-worker heartbeat-age series
        (WorkerMetrics): worker_heartbeat_age-ID, or duration-worker.ID
        (csv names files TYPE-INSTANCE-YYYY-MM-DD)."""
        names = set()
        for prefix in ("worker_heartbeat_age-", "duration-worker."):
            for path in self.files(pool, prefix + "*"):
                names.add(os.path.basename(path)[len(prefix) : -len("-YYYY-MM-DD")])
        return sorted(names)

    def log(self) -> str:
        """collectd's log and output, the last lines (for failures)."""
        text = ""
        for name in ("collectd.log", "collectd.out"):
            try:
                with open(os.path.join(self.dir, name)) as f:
                    text += f.read()[-3000:]
            except OSError:
                pass
        return text

    def close(self) -> None:
        stop_process(self.proc, grace=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def spawn_worker(cmd: Sequence[str], log: str, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=open(log, "a"), stdin=subprocess.DEVNULL, env=e)
