#!/usr/bin/env bash
# The README's option table is the options table's: `tokenmgr help options
# --markdown` between the options:begin and options:end markers.
#   tests/readme_options.sh BUILD_DIR           check (a ctest)
#   tests/readme_options.sh BUILD_DIR --update  rewrite the README's table
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$1
readme=$top/README.md
table=$(mktemp)
trap 'rm -f "$table" "$table.new"' EXIT
TOKENMGR_CONFIG='' "$build/tokenmgr" help options --markdown >"$table"
awk -v table="$table" '
    /<!-- options:begin/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- options:end -->/ { skip = 0 }
    !skip { print }' "$readme" >"$table.new"
if [ "${2:-}" = --update ]; then
    cp "$table.new" "$readme"
    echo "README.md: option table rewritten"
    exit 0
fi
if ! diff -u "$readme" "$table.new"; then
    echo "readme_options: README.md's option table differs from" \
        "'tokenmgr help options --markdown' (tests/readme_options.sh BUILD --update)" >&2
    exit 1
fi
echo "readme_options: README.md's option table matches the options table"
