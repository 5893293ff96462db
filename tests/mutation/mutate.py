#!/usr/bin/env python3
"""Curated mutation testing: does the suite fail when the code is wrong?

Each mutant of tests/mutation/mutants.toml is one deliberate bug (a literal
text, found exactly once in its file, replaced), with the ctest tests that
must catch it.  The runner applies one mutant at a time to a scratch copy of
the source (never the developer's tree), rebuilds it incrementally, runs only
the named tests, restores the file, and prints a table:

  killed         a named test failed (or timed out): the bug was caught
  SURVIVED       every named test passed: a weak test, or a wrong name
  NOT APPLIED    the text is not in the file exactly once: the list rotted
  NO BUILD       the mutant does not compile: the list is wrong

Anything but `killed` is a failure (exit status 1), so the list cannot rot
silently.  Before the first mutant the named tests run once on the
unmutated copy: they must pass there (exit status 2 otherwise).

  mutate.py [NAME|GLOB...]          the mutants named (default: all)
  mutate.py --list                  list them, with their tests
  mutate.py --check                 only check that each applies (to the
                                    working tree, in memory: seconds)
  mutate.py --subset N [--rotate K] a fixed share of about N mutants: the
                                    list split into ceil(all / N) groups
                                    (every group-th mutant), group K mod
                                    that count (K: the commit count of
                                    HEAD), so a commit always runs the same
                                    group and consecutive commits run them
                                    all in turn

The scratch copy lives in $TKM_MUTATION_DIR (default build-mutation/ at the
top of the checkout): src/ (the tracked and untracked, not ignored, files of
the working tree, synchronised by content so that builds stay incremental),
build/ (its build, Ninja when available), logs/ (each mutant's build and test
output) and results.tsv / results.md (the last run's table).  A test is
named as ctest names it, optionally with a Check TCase: "recovery:stall_rule"
runs `ctest -R '^recovery$'` with CK_RUN_CASE=stall_rule.
"""

import argparse
import fcntl
import fnmatch
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("mutate.py: needs Python 3.11 or later (tomllib)")

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIST = os.path.join(TOP, "tests", "mutation", "mutants.toml")


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def die(msg, status=2):
    print("mutate: " + msg, file=sys.stderr)
    sys.exit(status)


def say(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


# ---- the list ----------------------------------------------------------------


def load_list(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    mutants = doc.get("mutant", [])
    targets = doc.get("targets", {})
    seen = set()
    for m in mutants:
        name = m.get("name", "")
        where = f"{os.path.relpath(path, TOP)}: mutant '{name}'"
        if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", name):
            die(f"{where}: a name is area.what (lower case, digits, _)")
        if name in seen:
            die(f"{where}: named twice")
        seen.add(name)
        if "edit" in m:
            edits = m["edit"]
        else:
            edits = [{k: m[k] for k in ("file", "find", "replace") if k in m}]
        for e in edits:
            if set(e) != {"file", "find", "replace"}:
                die(f"{where}: each edit needs file, find and replace")
            if e["find"] == e["replace"] or e["find"] == "":
                die(f"{where}: find is empty or equal to replace")
        if not m.get("breaks"):
            die(f"{where}: say what it breaks (breaks = ...)")
        tests = m.get("tests", [])
        if not tests or not all(isinstance(t, str) and t for t in tests):
            die(f"{where}: name the tests that must catch it (tests = [...])")
        m["edits"] = edits
    return mutants, targets


def select(mutants, patterns):
    if not patterns:
        return list(mutants)
    chosen = []
    for p in patterns:
        hits = [m for m in mutants if fnmatch.fnmatchcase(m["name"], p)]
        if not hits:
            die(f"no mutant matches '{p}' (mutate.py --list)")
        chosen += [m for m in hits if m not in chosen]
    return [m for m in mutants if m in chosen]


def rotation_index():
    try:
        out = subprocess.run(["git", "-C", TOP, "rev-list", "--count", "HEAD"],
                             capture_output=True, text=True, check=True)
        return int(out.stdout.strip())
    except (subprocess.CalledProcessError, ValueError, OSError):
        return 0


def subset(mutants, size, k):
    groups = max(1, math.ceil(len(mutants) / size))
    g = k % groups
    return [m for i, m in enumerate(mutants) if i % groups == g], g, groups


# ---- the scratch copy ----------------------------------------------------------


def source_files():
    out = subprocess.run(["git", "-C", TOP, "ls-files", "-z", "--cached",
                          "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    files = []
    for rel in out.decode().split("\0"):
        if rel and os.path.lexists(os.path.join(TOP, rel)):
            files.append(rel)
    return files


def sync(src):
    """Make src/ hold the working tree's files, writing only what differs
    (a rewritten file gets a new mtime: the build sees exactly the change)."""
    files = source_files()
    wanted = set(files)
    changed = 0
    for rel in files:
        a, b = os.path.join(TOP, rel), os.path.join(src, rel)
        if os.path.islink(a):
            target = os.readlink(a)
            if not (os.path.islink(b) and os.readlink(b) == target):
                if os.path.lexists(b):
                    os.remove(b)
                os.makedirs(os.path.dirname(b), exist_ok=True)
                os.symlink(target, b)
                changed += 1
            continue
        with open(a, "rb") as f:
            data = f.read()
        same = False
        if os.path.isfile(b) and not os.path.islink(b):
            with open(b, "rb") as f:
                same = f.read() == data
        if not same:
            if os.path.lexists(b) and (os.path.islink(b) or not os.path.isfile(b)):
                os.remove(b)
            os.makedirs(os.path.dirname(b), exist_ok=True)
            with open(b, "wb") as f:
                f.write(data)
            changed += 1
        shutil.copymode(a, b)
    for root, dirs, names in os.walk(src):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), src)
            if rel not in wanted:
                os.remove(os.path.join(root, n))
                changed += 1
    return len(files), changed


# ---- processes ----------------------------------------------------------------

current = None  # the running child, killed with its group on an interrupt


def run(cmd, log, env=None, timeout=None, cwd=None):
    """Run cmd, appending its output to log; returns (status, seconds,
    output); status None on a timeout (its process group killed)."""
    global current
    t0 = time.monotonic()
    with open(log, "a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        current = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True, text=True,
                                   errors="replace")
        try:
            text, _ = current.communicate(timeout=timeout)
            status = current.returncode
        except subprocess.TimeoutExpired:
            kill_current()
            text, _ = current.communicate()
            status = None
        finally:
            if current.poll() is None:
                kill_current()
                current.wait()
            current = None
        out.write(text)
        if status is None:
            out.write(f"\n(timed out after {timeout:.0f} s: killed)\n")
    return status, time.monotonic() - t0, text


def kill_current():
    if current is not None and current.poll() is None:
        try:
            os.killpg(current.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- building and testing ---------------------------------------------------------


class Work:
    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.build = os.path.join(root, "build")
        self.logs = os.path.join(root, "logs")
        self.executables = {}
        self.baseline = {}

    def configure(self, log):
        if os.path.exists(os.path.join(self.build, "CMakeCache.txt")):
            return
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        # Warnings are not errors here: a mutant may well leave a variable
        # unused, and still be a bug worth catching.
        status, _, _ = run(["cmake", "-S", self.src, "-B", self.build] + gen +
                           ["-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                            "-DTKM_WERROR=OFF", "-DTKM_REQUIRE_COLLECTD=ON"],
                           log)
        if status != 0:
            shutil.rmtree(self.build, ignore_errors=True)
            die(f"configuring the scratch copy failed: {log}")

    def learn_tests(self):
        out = subprocess.run(["ctest", "--test-dir", self.build,
                              "--show-only=json-v1"],
                             capture_output=True, text=True, check=True).stdout
        for t in json.loads(out)["tests"]:
            cmd = t.get("command") or [""]
            self.executables[t["name"]] = os.path.basename(cmd[0])

    def targets_for(self, specs, overrides):
        targets = set()
        for spec in specs:
            test = spec.split(":", 1)[0]
            if test not in self.executables:
                die(f"no ctest test named '{test}' (ctest --test-dir "
                    f"{self.build} -N lists them)")
            if test in overrides:
                targets.update(overrides[test])
            elif self.executables[test].startswith("check_"):
                targets.add(self.executables[test])
            else:
                targets.add("all")
        return sorted(targets)

    def build_targets(self, targets, log):
        jobs = str(os.cpu_count() or 2)
        status, secs, _ = run(["cmake", "--build", self.build, "-j", jobs,
                               "--target"] + targets, log)
        return status == 0, secs

    def test(self, spec, log, timeout):
        """Run one test spec: ('pass' | 'fail' | 'timeout' | 'skipped',
        seconds, Check's count of tests run or None)."""
        test, _, case = spec.partition(":")
        env = dict(os.environ)
        env.pop("CK_RUN_SUITE", None)
        env.pop("CK_RUN_CASE", None)
        if case:
            env["CK_RUN_CASE"] = case
        status, secs, text = run(["ctest", "--test-dir", self.build, "-R",
                                  f"^{re.escape(test)}$", "-V",
                                  "--no-tests=error"], log, env=env,
                                 timeout=timeout)
        checks = [int(n) for n in re.findall(r"Checks: (\d+)", text)]
        if status is None:
            return "timeout", secs, checks
        if re.search(r"\*\*\*Skipped|Not Run", text):
            return "skipped", secs, checks
        return ("pass" if status == 0 else "fail"), secs, checks


def apply(src, m, write=True):
    """Apply every edit of mutant m; returns (originals, None) or (None,
    why) with nothing changed.  write=False: only check."""
    originals = {}
    texts = {}
    for e in m["edits"]:
        path = os.path.join(src, e["file"])
        if not os.path.isfile(path):
            return None, f"{e['file']}: no such file"
        if path not in texts:
            with open(path, encoding="utf-8") as f:
                texts[path] = f.read()
            originals[path] = texts[path]
        n = texts[path].count(e["find"])
        if n != 1:
            first = e["find"].strip().splitlines()[0][:60]
            return None, f"{e['file']}: '{first}' found {n} times, not once"
        texts[path] = texts[path].replace(e["find"], e["replace"])
    for path, text in texts.items():
        if write:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    return originals, None


def restore(originals):
    for path, text in (originals or {}).items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


# ---- the table ----------------------------------------------------------------------


def files_of(m):
    return ", ".join(dict.fromkeys(e["file"] for e in m["edits"]))


def table(results, total_secs):
    rows = [("mutant", "file", "result", "killed by", "s")]
    for m, result, by, secs in results:
        rows.append((m["name"], files_of(m), result, by or "-", f"{secs:.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if r is rows[0]:
            lines.append("  ".join("-" * w for w in widths))
    counts = {}
    for _, result, _, _ in results:
        counts[result] = counts.get(result, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    lines.append(f"{len(results)} mutants in {total_secs / 60:.1f} min: {summary}")
    return "\n".join(lines)


def markdown(results):
    out = ["| mutant | file | what it breaks | killed by | result |",
           "|---|---|---|---|---|"]
    for m, result, by, _ in results:
        out.append(f"| `{m['name']}` | {files_of(m)} | {m['breaks']} | "
                   f"{by or '-'} | {result} |")
    return "\n".join(out) + "\n"


# ---- main ----------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(
        description="Apply each curated mutant to a scratch copy and run the "
                    "tests that must catch it (tests/mutation/mutants.toml).")
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help="mutant names or globs (default: every mutant)")
    ap.add_argument("--list", action="store_true", help="list the mutants")
    ap.add_argument("--check", action="store_true",
                    help="only check that each mutant applies")
    ap.add_argument("--subset", type=int, metavar="N",
                    help="run a rotating fixed share of about N mutants")
    ap.add_argument("--rotate", type=int, metavar="K",
                    help="which share (default: git rev-list --count HEAD)")
    ap.add_argument("--mutants", default=LIST, help=argparse.SUPPRESS)
    args = ap.parse_args()

    mutants, overrides = load_list(args.mutants)
    chosen = select(mutants, args.names)
    if args.subset:
        if args.subset < 1:
            die("--subset takes a count >= 1")
        k = args.rotate if args.rotate is not None else rotation_index()
        chosen, g, groups = subset(chosen, args.subset, k)
        say(f"share {g + 1} of {groups} (rotation {k}): {len(chosen)} mutants")
    if args.list:
        for m in chosen:
            print(f"{m['name']:40} {files_of(m):28} {' '.join(m['tests'])}")
            print(f"{'':40} {m['breaks']}")
        print(f"{len(chosen)} mutants")
        return 0
    if args.check:
        bad = 0
        for m in chosen:
            _, why = apply(TOP, m, write=False)
            if why:
                print(f"{m['name']}: NOT APPLIED: {why}")
                bad += 1
        print(f"{len(chosen) - bad} of {len(chosen)} mutants apply")
        return 1 if bad else 0

    root = os.path.abspath(os.environ.get("TKM_MUTATION_DIR",
                                          os.path.join(TOP, "build-mutation")))
    work = Work(root)
    os.makedirs(work.logs, exist_ok=True)
    lock = open(os.path.join(root, "lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        die(f"another mutation run holds {root}/lock")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    started = time.monotonic()
    originals = None
    results = []
    try:
        n, changed = sync(work.src)
        say(f"scratch copy {work.src}: {n} files, {changed} rewritten")
        setup_log = os.path.join(work.logs, "_setup.log")
        open(setup_log, "w").close()
        work.configure(setup_log)
        specs = list(dict.fromkeys(s for m in chosen for s in m["tests"]))
        ok, secs = work.build_targets(["all"], setup_log)
        if not ok:
            die(f"the unmutated copy does not build: {setup_log}")
        work.learn_tests()
        # Every test must pass unmutated, and a TCase named must exist
        # (Check runs nothing, and passes, for an unknown one).
        say(f"built in {secs:.0f} s; the {len(specs)} tests named, unmutated")
        for spec in specs:
            verdict, secs, checks = work.test(spec, setup_log, timeout=900)
            if verdict != "pass":
                die(f"{spec} does not pass unmutated ({verdict}): {setup_log}")
            if ":" in spec and sum(checks) == 0:
                die(f"{spec}: no Check TCase of that name ran: {setup_log}")
            work.baseline[spec] = secs
            say(f"  {spec}: {secs:.1f} s")

        for i, m in enumerate(chosen, 1):
            log = os.path.join(work.logs, m["name"] + ".log")
            with open(log, "w") as f:
                f.write(f"{m['name']}: {m['breaks']}\n")
            t0 = time.monotonic()
            originals, why = apply(work.src, m)
            if originals is None:
                result, by = "NOT APPLIED", why
            else:
                ok, _ = work.build_targets(work.targets_for(m["tests"], overrides), log)
                if not ok:
                    result, by = "NO BUILD", "see " + os.path.relpath(log, TOP)
                else:
                    result, by = "SURVIVED", None
                    for spec in m["tests"]:
                        limit = max(60.0, 4 * work.baseline[spec] + 30)
                        verdict, _, _ = work.test(spec, log, timeout=limit)
                        if verdict != "pass":
                            result = "killed"
                            by = spec if verdict == "fail" else f"{spec} ({verdict})"
                            break
                restore(originals)
                originals = None
            secs = time.monotonic() - t0
            results.append((m, result, by, secs))
            print(f"[{i}/{len(chosen)}] {m['name']}: {result}"
                  f"{' by ' + by if by else ''} ({secs:.0f} s)", flush=True)
    except Interrupted as e:
        restore(originals)
        kill_current()
        print(f"\nmutate: interrupted ({e}); the scratch copy is restored",
              file=sys.stderr)
        if results:
            print(table(results, time.monotonic() - started))
        return 130
    finally:
        restore(originals)

    total = time.monotonic() - started
    text = table(results, total)
    print()
    print(text)
    with open(os.path.join(root, "results.tsv"), "w") as f:
        f.write("mutant\tfiles\tresult\tkilled_by\tseconds\n")
        for m, result, by, secs in results:
            f.write(f"{m['name']}\t{files_of(m)}\t{result}\t{by or ''}\t{secs:.1f}\n")
    with open(os.path.join(root, "results.md"), "w") as f:
        f.write(markdown(results))
    bad = [r for r in results if r[1] != "killed"]
    if bad:
        print(f"mutate: {len(bad)} mutant(s) not killed; logs in "
              f"{os.path.relpath(work.logs, TOP)}/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
