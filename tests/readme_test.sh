#!/usr/bin/env bash
# Every command the README shows in a block marked "sh test" runs and
# succeeds, against a private redis-server; the worker example in the README
# is examples/minimal_worker.c verbatim, and it runs against the fake Keepa.
set -euo pipefail
src=$1
build=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tkm-readme-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "readme: $*" >&2; exit 1; }

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no \
    --dir "$tmp" >/dev/null 2>&1 &
pids+=($!)
"$build/tests/fake_keepa" --port 0 --rate 20 >"$tmp/fake.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ -S "$tmp/redis.sock" ] && grep -q listening "$tmp/fake.out" && break
    sleep 0.05
done
fake=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/fake.out")
[ -n "$fake" ] || fail "the fake Keepa did not start"
export TOKENMGR_REDIS_URL="unix://$tmp/redis.sock"
export TOKENMGR_KEEPA_KEY=readmekey
printf 'pool: readme\nkeepa:\n  base_url: %s\n' "$fake" >"$tmp/t.yaml"
export TOKENMGR_CONFIG=$tmp/t.yaml
export PATH="$build:$PATH"

# The blocks marked "sh test", one command a line.
python3 - "$src/README.md" >"$tmp/commands" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.findall(r"^```sh test\n(.*?)^```", text, flags=re.S | re.M):
    for line in block.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            print(line)
PY
n=0
while IFS= read -r cmd; do
    bash -c "$cmd" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "\`$cmd\` failed"; }
    n=$((n + 1))
done <"$tmp/commands"
[ $n -ge 5 ] || fail "only $n commands found in the README"
echo "readme: $n commands ran"

# The C example is the file that is built and run.
python3 - "$src/README.md" "$src/examples/minimal_worker.c" <<'PY' || fail "the README's worker example differs from examples/minimal_worker.c"
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```c\n(.*?)^```", text, flags=re.S | re.M)
sys.exit(0 if open(sys.argv[2]).read() in blocks else 1)
PY
"$build/minimal_worker" >"$tmp/worker.out" 2>&1 || { cat "$tmp/worker.out"; fail "the example worker failed"; }
[ "$(grep -c '^batch ' "$tmp/worker.out")" = 3 ] || { cat "$tmp/worker.out"; fail "the example worker did not fetch 3 batches"; }
echo "readme: the worker example ran: $(tail -n 1 "$tmp/worker.out")"
echo "readme: 2 passed, 0 failed"
