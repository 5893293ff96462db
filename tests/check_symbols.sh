#!/bin/sh
# The dynamic symbols libtokenmgr.so defines are exactly the functions the
# public header marks TKM_EXPORT: nothing private leaks, nothing is missing.
set -eu
lib=$1
header=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort >"$tmp/exported"
# Declarations span lines: join them, then take the name before "(".
tr '\n' ' ' <"$header" | grep -o 'TKM_EXPORT [a-z][^;(#]*(' |
    sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | sort >"$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported"; then
    echo "symbols: exported symbols differ from the header (- declared, + exported)"
    exit 1
fi
echo "symbols: $(wc -l <"$tmp/exported") exported functions match the header"
