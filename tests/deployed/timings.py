#!/usr/bin/env python3
"""Apply tests/deployed/timings.yaml, the one list of the timings the
as-deployed test changes.

  timings.py TIMINGS apply   write /etc/tokenmgr/tokenmgr.d/90-deployed-test-
                             timings.yaml and make each text substitution in
                             the installed files, each exactly `count` times
                             (exit 1, nothing more done, when one does not
                             match); print one line per change
  timings.py TIMINGS get KEY print a top-level scalar (fake_keepa_period_ms)
"""
import os
import sys

import yaml

OVERRIDE = "/etc/tokenmgr/tokenmgr.d/90-deployed-test-timings.yaml"


def main():
    path, what = sys.argv[1], sys.argv[2]
    with open(path) as f:
        doc = yaml.safe_load(f)
    if what == "get":
        print(doc[sys.argv[3]])
        return 0
    if what != "apply":
        sys.exit(f"timings.py: unknown command {what!r}")
    changes = []
    for file, old, new, count in doc["files"]:
        with open(file) as f:
            text = f.read()
        n = text.count(old)
        if n != count:
            sys.exit(f"timings.py: {file}: {old!r} occurs {n} times, not {count}")
        changes.append((file, old, new, count))
    os.makedirs(os.path.dirname(OVERRIDE), exist_ok=True)
    with open(OVERRIDE, "w") as f:
        f.write("# The deployed test's timings (tests/deployed/timings.yaml).\n")
        yaml.safe_dump(doc["tokenmgr.d"], f, sort_keys=False)
    for section, keys in doc["tokenmgr.d"].items():
        for k, v in keys.items():
            print(f"timing {OVERRIDE}: {section}.{k} = {v}")
    for file, old, new, count in changes:
        with open(file) as f:
            text = f.read()
        with open(file, "w") as f:
            f.write(text.replace(old, new))
        print(f"timing {file}: {old.strip()!r} -> {new.strip()!r} (x{count})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
