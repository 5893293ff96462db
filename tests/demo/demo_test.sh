#!/usr/bin/env bash
# The demo in its short mode, as CI runs it: exits 0, the fake Keepa counted
# no 429 after the first sync, exactly one recovery ran, and nothing it
# started (process, socket, file outside its output folder) is left behind.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tkm-demo-test-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "demo_test: $*" >&2; exit 1; }
if [ "${TKM_SANITIZED:-0}" = 1 ]; then
    echo "demo_test: skipped: the sanitizer build's plugin cannot load into an uninstrumented collectd"
    exit 77
fi

TMPDIR=$tmp bash "$src/tests/demo/demo.sh" "$build" --duration 30 --out "$tmp/out" >"$tmp/demo.txt" 2>&1 ||
    { tail -30 "$tmp/demo.txt"; fail "the demo exited non-zero"; }
read -r n429 recoveries < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests_429"], d["recoveries"])' "$tmp/out/summary.json")
[ "$n429" = 0 ] || fail "the fake Keepa counted $n429 429s after the first sync"
[ "$recoveries" = 1 ] || { cat "$tmp/out/recovery-audit.txt"; fail "$recoveries recovery actions, expected exactly 1"; }
grep -q "OKAY: no longer stalled" "$tmp/out/collectd.log" || fail "the stall did not clear"
# Only the output folder remains in the demo's TMPDIR.
left=$(ls -A "$tmp" | grep -v -e '^out$' -e '^demo.txt$' || true)
[ -z "$left" ] || fail "left behind in TMPDIR: $left"
if pgrep -f "$tmp" >/dev/null; then
    pgrep -af "$tmp" >&2
    fail "processes of the demo are still running"
fi
echo "demo_test: 0 429s, 1 recovery, the stall cleared, nothing left behind"
echo "demo_test: 1 passed, 0 failed"
