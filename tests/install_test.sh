#!/usr/bin/env bash
# cmake --install into a staging folder (DESTDIR; the prefix is /usr), then: every
# file lands where Debian expects it, a tiny program compiles against the
# installed header with `pkg-config --cflags --libs tokenmgr` and runs, and
# collectd loads the installed plugin.
set -euo pipefail
build=$1
libdir=$2
stage=$(mktemp -d "${TMPDIR:-/tmp}/tkm-install-XXXXXX")
trap 'rm -rf "$stage"' EXIT
fail() { echo "install: $*" >&2; exit 1; }

DESTDIR=$stage cmake --install "$build" >"$stage.log" 2>&1 ||
    { cat "$stage.log"; rm -f "$stage.log"; fail "cmake --install failed"; }
rm -f "$stage.log"

for f in usr/include/tokenmgr.h "usr/$libdir/libtokenmgr.so" \
    "usr/$libdir/pkgconfig/tokenmgr.pc" usr/bin/tokenmgr \
    usr/lib/collectd/tokenmgr.so etc/tokenmgr/tokenmgr.yaml \
    etc/collectd/collectd.conf.d/tokenmgr.conf \
    usr/libexec/tokenmgr/restart-workers usr/libexec/tokenmgr/fake_keepa \
    usr/libexec/tokenmgr/keepa_worker \
    usr/share/man/man1/tokenmgr.1 usr/share/man/man5/collectd-tokenmgr.5 \
    usr/lib/systemd/system/keepa-worker@.service \
    usr/share/tokenmgr/alerts/prometheus/tokenmgr.rules.yml \
    usr/share/tokenmgr/alerts/grafana/tokenmgr.json; do
    [ -e "$stage/$f" ] || fail "missing /$f"
done
ls "$stage/usr/$libdir"/libtokenmgr.so.0* >/dev/null || fail "no versioned libtokenmgr.so.0"
# Only the command is on the PATH: examples and the fake Keepa are not.
extra=$(ls "$stage/usr/bin" | grep -vx tokenmgr || true)
[ -z "$extra" ] || fail "/usr/bin holds more than tokenmgr: $extra"
[ -x "$stage/usr/libexec/tokenmgr/restart-workers" ] || fail "restart-workers is not executable"
echo "install: every file in place"

# A worker's first program, built the way a user would.
export PKG_CONFIG_SYSROOT_DIR=$stage
export PKG_CONFIG_PATH=$stage/usr/$libdir/pkgconfig
cat >"$stage/hello.c" <<'C'
#include <stdio.h>
#include <tokenmgr.h>

int main(void)
{
    tkm_options o;
    tkm_client *c = NULL;

    tkm_options_init(&o);
    if (tkm_client_open(&o, &c) != TKM_OK)
        return 1;
    printf("tokenmgr %s, pool %s\n", tkm_version(), tkm_client_options(c)->pool);
    tkm_client_free(c);
    return 0;
}
C
flags=$(pkg-config --cflags --libs tokenmgr) || fail "pkg-config does not know tokenmgr"
case "$flags" in *"$stage"*) ;; *) fail "pkg-config flags do not point into the staging folder: $flags" ;; esac
# The sanitizer build's library needs its runtime in the program too.
san=()
[ "${TKM_SANITIZED:-0}" = 1 ] && san=(-fsanitize=address,undefined)
cc -Wall -Wextra -Werror "${san[@]}" -o "$stage/hello" "$stage/hello.c" $flags ||
    fail "a program does not compile against the installed header"
out=$(LD_LIBRARY_PATH=$stage/usr/$libdir "$stage/hello")
[ "$out" = "tokenmgr $(pkg-config --modversion tokenmgr), pool keepa" ] || fail "hello printed '$out'"
echo "install: a program built with pkg-config runs: $out"

# collectd loads the installed plugin (the library from the staging folder).
if [ "${TKM_SANITIZED:-0}" = 1 ]; then
    echo "install: collectd loading skipped: the sanitizer build's plugin needs the ASan runtime preloaded"
elif command -v collectd >/dev/null || [ -x /usr/sbin/collectd ]; then
    collectd=$(command -v collectd || echo /usr/sbin/collectd)
    sock=$stage/redis.sock
    redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no \
        --dir "$stage" --daemonize no >/dev/null 2>&1 &
    rpid=$!
    trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$stage"' EXIT
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    cat >"$stage/collectd.conf" <<CONF
Hostname "install-test"
FQDNLookup false
Interval 1
BaseDir "$stage"
TypesDB "/usr/share/collectd/types.db"
PluginDir "$stage/usr/lib/collectd"
LoadPlugin tokenmgr
<Plugin tokenmgr>
  <Pool "installed">
    RedisURL "unix://$sock"
  </Pool>
</Plugin>
CONF
    LD_LIBRARY_PATH=$stage/usr/$libdir "$collectd" -T -C "$stage/collectd.conf" >"$stage/collectd.out" 2>&1 ||
        { cat "$stage/collectd.out"; fail "collectd -T refused the installed plugin"; }
    if grep -q "undefined symbol\|cannot open shared object" "$stage/collectd.out"; then
        cat "$stage/collectd.out"
        fail "the installed plugin did not load"
    fi
    echo "install: collectd loads the installed plugin"
fi
echo "install: 1 passed, 0 failed"
