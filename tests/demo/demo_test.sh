#!/usr/bin/env bash
# The demo in its short mode, as CI runs it: exits 0, the workers fetched
# products (calls were served and charged) and the fake Keepa counted no 429
# after the first sync, exactly one recovery ran, and nothing it
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
read -r n429 recoveries served charged products < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests_429"], d["recoveries"], d["served"], d["tokens_charged"], d["products"])' "$tmp/out/summary.json")
[ "$n429" = 0 ] || fail "the fake Keepa counted $n429 429s after the first sync"
# "0 429s" means something only if calls were made: the fake served and
# charged them, and the workers wrote the products (a 30 s run fetches
# about 75 in about 140 calls; the bounds leave room for a slow machine).
[ "$served" -ge 10 ] 2>/dev/null || fail "the fake Keepa served $served calls, expected at least 10"
[ "$charged" -gt 0 ] 2>/dev/null || fail "the fake Keepa charged $charged tokens"
[ "$products" -ge 10 ] 2>/dev/null || fail "the workers fetched $products products, expected at least 10"
[ "$recoveries" = 1 ] || { cat "$tmp/out/recovery-audit.txt"; fail "$recoveries recovery actions, expected exactly 1"; }
grep -q "OKAY: no longer stalled" "$tmp/out/collectd.log" || fail "the stall did not clear"
# Only the output folder remains in the demo's TMPDIR.
left=()
shopt -s dotglob nullglob
for f in "$tmp"/*; do
    case ${f##*/} in out | demo.txt) ;; *) left+=("${f##*/}") ;; esac
done
shopt -u dotglob nullglob
[ ${#left[@]} -eq 0 ] || fail "left behind in TMPDIR: ${left[*]}"
if pgrep -f "$tmp" >/dev/null; then
    pgrep -af "$tmp" >&2
    fail "processes of the demo are still running"
fi
echo "demo_test: $products products in $served calls, 0 429s, 1 recovery, the stall cleared, nothing left behind"
echo "demo_test: 1 passed, 0 failed"
