#!/bin/sh
# tokenmgr.so exports module_register and no other function: collectd needs
# nothing else, and nothing of ours may clash with another plugin's symbols.
set -eu
so=$1
funcs=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtWwi]$/ {print $3}' | sort)
others=$(nm -D --defined-only "$so" | awk '$2 !~ /^[TtWwi]$/ {print $3}' | sort)
if [ "$funcs" != "module_register" ]; then
    echo "plugin symbols: expected only module_register, got:"
    echo "$funcs"
    exit 1
fi
if [ -n "$others" ]; then
    echo "plugin symbols: unexpected data symbols exported:"
    echo "$others"
    exit 1
fi
echo "plugin symbols: $so exports module_register only"
