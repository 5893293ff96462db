#!/usr/bin/env python3
"""python_worker: an ingestion worker in the shape of the original
SmartIngestor, on the tokenmgr Python binding (the twin of keepa_worker.c).

    python_worker.py --output FILE --state DIR [--config FILE] [--batch N]
                     [--offers N] [--first-page N] [--max-pages N]
                     [--worker ID]

It pages through /deal (from page --first-page until an empty page or page
--max-pages - 1), then fetches the deals' products with /product in batches
of --batch and appends them to FILE as JSON lines.  Progress is
checkpointed in DIR (the same files as keepa_worker's) so that a restart,
even after kill -9, resumes without losing or repeating a product: every
append is followed by a checkpoint that records the output's length, and
the next append first cuts the output back to that length.  It beats in
the pagination loop and in each batch (and the library beats while it
waits for tokens).

SIGTERM/SIGINT: the call in flight completes (and is accounted for), a wait
for tokens ends, the checkpoint is kept, exit 0.  A 429 is never read as
"no more data": the library waits for tokens and retries.  Redis
unreachable means no call was made: it tries again each second for up to
60 s, then exits 1 for the supervisor.  Tokens further away than
bucket.max_wait_s: it waits visibly (heartbeats) and tries again.

Configuration: --config, else $TOKENMGR_CONFIG; the access key from
keepa.key_file or $TOKENMGR_KEEPA_KEY.  The library: libtokenmgr.so.0, or
$TOKENMGR_LIBRARY.

Exit: 0 done or stopped by a signal; 1 an error (the checkpoint keeps the
position); 64 usage; 78 configuration.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Dict, List, Optional

import tokenmgr

PAGE_COST = 5  # /deal: 5 tokens a page
REDIS_PATIENCE_S = 60
CHECKPOINT_FIELDS = ("deal_page", "asins_bytes", "product_index", "output_bytes")


def say(msg: str) -> None:
    print("python_worker: " + msg, file=sys.stderr, flush=True)


class Stopped(Exception):
    """A signal asked the worker to stop."""


class Worker:
    def __init__(self, args: argparse.Namespace, client: tokenmgr.Client) -> None:
        self.args = args
        self.client = client
        self.keepa = tokenmgr.Keepa(client)
        self.state_path = os.path.join(args.state, "checkpoint")
        self.asins_path = os.path.join(args.state, "asins")
        self.stop = False
        self.fetched = 0
        self.cp: Dict[str, int] = {}

    # ---- files ---------------------------------------------------------

    def load_checkpoint(self) -> None:
        self.cp = {k: 0 for k in CHECKPOINT_FIELDS}
        self.cp["deal_page"] = self.args.first_page
        try:
            with open(self.state_path, encoding="ascii") as f:
                for line in f:
                    name, _, value = line.strip().partition("=")
                    if name not in self.cp:
                        raise ValueError("bad line %r" % line.strip())
                    self.cp[name] = int(value)
        except FileNotFoundError:
            pass

    def save_checkpoint(self) -> None:
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            for k in CHECKPOINT_FIELDS:
                f.write("%s=%d\n" % (k, self.cp[k]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    @staticmethod
    def append(path: str, at: int, data: bytes) -> int:
        """Write data at `at` (whatever lies past it is from a run that died
        before its checkpoint: written again now, exactly once)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, at)
            os.lseek(fd, at, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return at + len(data)

    # ---- the API -------------------------------------------------------

    def beat(self, phase: str) -> None:
        """A heartbeat; one lost to a Redis blip is not an error."""
        try:
            self.client.heartbeat(phase)
        except tokenmgr.TokenmgrError:
            pass

    def call(self, path: str, params: Dict[str, object], cost: int) -> Optional[dict]:
        """One paid call: the answer, or None for a request Keepa refused."""
        redis_waited = 0
        while True:
            if self.stop:
                raise Stopped()
            try:
                return self.keepa.request(path, params, cost=cost).json()
            except tokenmgr.Cancelled:
                raise Stopped() from None
            except tokenmgr.KeepaAPIError as e:
                say(str(e))
                return None
            except tokenmgr.Unavailable as e:
                if redis_waited >= REDIS_PATIENCE_S:
                    raise
                if redis_waited == 0:
                    say("%s; trying again each second for up to %d s" % (e, REDIS_PATIENCE_S))
                time.sleep(1)
                redis_waited += 1
            except tokenmgr.Denied as e:
                # Tokens are far away.  A Celery task would be retried later
                # here; a process of its own waits, visibly.
                say("%s; waiting" % e)
                for _ in range(10):
                    if self.stop:
                        raise Stopped() from None
                    self.beat("waiting for tokens (long)")
                    time.sleep(1)

    def paginate(self) -> None:
        while self.cp["deal_page"] >= 0:
            page = self.cp["deal_page"]
            self.beat("paginating deals p%d" % page)
            selection = json.dumps({"page": page, "domainId": 1}, separators=(",", ":"))
            answer = self.call("/deal", {"domain": 1, "selection": selection}, PAGE_COST)
            if answer is None:
                raise RuntimeError("/deal page %d refused" % page)
            deals = answer.get("deals", {}).get("dr", [])
            asins = [d.get("asin") for d in deals]
            lines = "".join(a + "\n" for a in asins if valid_asin(a)).encode("ascii")
            if lines:
                self.cp["asins_bytes"] = self.append(self.asins_path, self.cp["asins_bytes"], lines)
            last = self.args.max_pages > 0 and page + 1 >= self.args.max_pages
            self.cp["deal_page"] = -1 if not deals or last else page + 1
            self.save_checkpoint()

    def fetch_products(self) -> None:
        try:
            with open(self.asins_path, "rb") as f:
                data = f.read(self.cp["asins_bytes"])
        except FileNotFoundError:
            return
        asins = [a.decode("ascii") for a in data.split(b"\n") if a]
        batch = self.args.batch
        total = len(asins)
        while self.cp["product_index"] < total:
            first = self.cp["product_index"]
            chunk = asins[first : first + batch]
            params: Dict[str, object] = {"domain": 1, "asin": chunk}
            if self.args.offers:
                params["offers"] = self.args.offers
            self.beat("batch %d/%d" % (first // batch + 1, (total + batch - 1) // batch))
            # The estimate: 1 per ASIN, or one page of offers (6) each; the
            # real cost is reconciled from tokensConsumed.
            answer = self.call("/product", params, len(chunk) * (6 if self.args.offers else 1))
            if answer is not None:  # a refused batch is skipped
                out = b""
                for p in answer.get("products", []):
                    if valid_asin(p.get("asin")):
                        line = {"asin": p["asin"], "title": p.get("title", "")}
                        out += (json.dumps(line, separators=(",", ":")) + "\n").encode()
                if out:
                    self.cp["output_bytes"] = self.append(self.args.output, self.cp["output_bytes"], out)
                self.fetched += len(answer.get("products", []))
            self.cp["product_index"] = first + len(chunk)
            self.save_checkpoint()


def valid_asin(a: object) -> bool:
    return isinstance(a, str) and len(a) == 10 and all(c.isdigit() or "A" <= c <= "Z" for c in a)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python_worker.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--config", default=os.environ.get("TOKENMGR_CONFIG") or None)
    ap.add_argument("--batch", type=int, default=10, choices=range(1, 101), metavar="N (1..100)")
    ap.add_argument("--offers", type=int, default=0)
    ap.add_argument("--first-page", type=int, default=0)
    ap.add_argument("--max-pages", type=int, default=0)
    ap.add_argument("--worker", default=None)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 64 if e.code else 0
    if args.offers and not 20 <= args.offers <= 100:
        say("--offers: '%d' is not an integer in 20..100" % args.offers)
        return 64
    os.makedirs(args.state, exist_ok=True)

    try:
        client = tokenmgr.Client(args.config or False, worker_id=args.worker)
        worker = Worker(args, client)
    except tokenmgr.ConfigError as e:
        say(str(e))
        return 78

    def on_signal(signum: int, frame: object) -> None:
        worker.stop = True
        client.cancel()  # a wait for tokens ends now; a call in flight completes

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rc = 0
    try:
        worker.load_checkpoint()
        say(
            "%s: starting at deal page %d, product %d"
            % (client.worker_id, worker.cp["deal_page"], worker.cp["product_index"])
        )
        worker.paginate()
        worker.fetch_products()
        say("done: %d products this run, %d in all" % (worker.fetched, worker.cp["product_index"]))
    except Stopped:
        say(
            "stopped by a signal; checkpoint saved at deal page %d, product %d"
            % (worker.cp["deal_page"], worker.cp["product_index"])
        )
    except (tokenmgr.TokenmgrError, OSError, ValueError, RuntimeError) as e:
        say(str(e))
        rc = 1
    finally:
        client.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
