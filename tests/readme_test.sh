#!/usr/bin/env bash
# Every command the README shows in a block marked "sh test" runs and
# succeeds, against a private redis-server; the worker example in the README
# is examples/minimal_worker.c verbatim, and it runs against the fake Keepa.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=fixtures/fixtures.sh
source "$(dirname "$0")/fixtures/fixtures.sh"
src=$1
fx_setup readme "$2"
build=$FX_BUILD tmp=$FX_TMP

fx_redis_start "$tmp" || fx_die "redis-server did not start"
fx_fake_keepa_start "$tmp/fake.out" --rate 20 || fx_die "the fake Keepa did not start"
fake=$fx_fake_url
export TOKENMGR_REDIS_URL=$fx_redis_url
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
    bash -c "$cmd" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fx_die "\`$cmd\` failed"; }
    n=$((n + 1))
done <"$tmp/commands"
[ $n -ge 5 ] || fx_die "only $n commands found in the README"
echo "readme: $n commands ran"

# The C example is the file that is built and run.
python3 - "$src/README.md" "$src/examples/minimal_worker.c" <<'PY' || fx_die "the README's worker example differs from examples/minimal_worker.c"
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```c\n(.*?)^```", text, flags=re.S | re.M)
sys.exit(0 if open(sys.argv[2]).read() in blocks else 1)
PY
"$build/minimal_worker" >"$tmp/worker.out" 2>&1 || { cat "$tmp/worker.out"; fx_die "the example worker failed"; }
[ "$(grep -c '^batch ' "$tmp/worker.out")" = 3 ] || { cat "$tmp/worker.out"; fx_die "the example worker did not fetch 3 batches"; }
echo "readme: the worker example ran: $(tail -n 1 "$tmp/worker.out")"
echo "readme: 2 passed, 0 failed"
