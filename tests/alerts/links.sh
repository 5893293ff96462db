#!/usr/bin/env bash
# Every link in README.md, alerts/ and conf/ resolves to an existing file
# and anchor: Markdown links in the source tree; file:// links (the alerts'
# runbook_url, the units' Documentation=) in a `cmake --install` staged with
# DESTDIR, where they point once installed; bare FILE.md#anchor references
# (such as the old "README.md#runbook-...") beside their file or at the top.
# Anchors are GitHub's heading slugs (tests/alerts/ops_lint.py, links).
source "$(dirname "$0")/lib.sh"

src=$1 build=$2
need python3 cmake

DESTDIR=$T_DIR/stage cmake --install "$build" >"$T_DIR/install.log" 2>&1 ||
    { cat "$T_DIR/install.log"; die "cmake --install failed"; }
python3 "$(dirname "$0")/ops_lint.py" "$src" links "$T_DIR/stage" || not_ok "links"

# The check is not vacuous: the old runbook links are refused.
mkdir -p "$T_DIR/bad/alerts"
cp "$src/alerts/RUNBOOK.md" "$T_DIR/bad/alerts/"
cp "$src/README.md" "$T_DIR/bad/" # its own links fail in this copy: not counted
printf 'runbook: "README.md#runbook-tokenmgrpoolstalled"\nsee file:///usr/share/doc/tokenmgr/RUNBOOK.md#runbook-nothing\n' \
    >"$T_DIR/bad/alerts/rules.yml"
if python3 "$(dirname "$0")/ops_lint.py" "$T_DIR/bad" links "$T_DIR/stage" >"$T_DIR/bad.out" 2>&1; then
    not_ok "a link to a missing anchor was accepted"
elif [ "$(grep -c '^FAIL alerts/rules.yml: ' "$T_DIR/bad.out")" -eq 2 ]; then
    ok "links to missing anchors are refused: $(grep '^FAIL alerts/rules.yml: ' "$T_DIR/bad.out" | sed 's/^FAIL //' | tr '\n' ';')"
else
    cat "$T_DIR/bad.out"
    not_ok "the broken links were not both refused"
fi
t_done
