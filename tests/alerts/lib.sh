# shellcheck shell=bash
# Helpers for the operations tests (sourced by bash scripts in this folder).
#
# Every test works in its own temporary folder, starts only private
# processes (loopback ports picked free, Unix sockets in the folder) and
# stops them on exit.  Exit 77 means "skipped" (CTest SKIP_RETURN_CODE).

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../fixtures/fixtures.sh
source "$(dirname "${BASH_SOURCE[0]}")/../fixtures/fixtures.sh"

# The scripts' arguments are SRC_DIR BUILD_DIR [MODE]: the build's collectd
# settings (with an ASan build, "${FX_COLLECTD[@]}" preloads the ASan
# runtime, as tests/check_plugin.c does), a folder T_DIR removed on exit
# (kept with T_KEEP=1).
T_NAME=$(basename "$0" .sh)
FX_KEEP=${T_KEEP:-0}
fx_setup "$T_NAME" "${2:?usage: $0 SRC_DIR BUILD_DIR ...}"
T_DIR=$FX_TMP
T_FAILS=0
trap 'exit 130' INT TERM

say() { printf '%s: %s\n' "$T_NAME" "$*" >&2; }
skip() { say "SKIP: $*"; exit 77; }
# Tests that load the plugin without FX_COLLECTD skip in the sanitizer
# build (TKM_SANITIZED=1 in their environment).
skip_if_sanitized() {
    [ "${TKM_SANITIZED:-0}" = 1 ] && skip "the sanitizer build's plugin cannot load into an uninstrumented collectd (check_plugin covers it)"
    return 0
}
die() { say "FAIL: $*"; exit 1; }
ok() { printf 'ok   %s\n' "$*"; }
not_ok() { printf 'FAIL %s\n' "$*"; T_FAILS=$((T_FAILS + 1)); }
t_done() {
    [ "$T_FAILS" -eq 0 ] || die "$T_FAILS check(s) failed"
    say "all checks passed"
}

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
    done
}

# A collectd main configuration (the template of tests/fixtures/) around a
# plugin-config file, BaseDir T_DIR, host tkm-test.
# write_collectd_main FILE INTERVAL INCLUDE_FILE [NAME=VALUE...]
write_collectd_main() {
    local file=$1 interval=$2 include=$3
    shift 3
    fx_collectd_conf "$file" HOSTNAME=tkm-test BASEDIR="$T_DIR" \
        INTERVAL="$interval" PLUGIN_CONF="$include" "$@"
}
