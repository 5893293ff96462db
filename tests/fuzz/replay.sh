#!/bin/sh
# Run every corpus file of every target through its replay_<target>.
# usage: replay.sh BINDIR CORPUSDIR TARGET...
set -eu
bindir=$1 corpus=$2
shift 2
for t in "$@"; do
    [ -d "$corpus/$t" ] || { echo "no corpus for $t" >&2; exit 1; }
    "$bindir/replay_$t" "$corpus/$t"
done
