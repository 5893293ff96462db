#!/usr/bin/env bash
# cmake --install into a staging folder (DESTDIR; the prefix is /usr), then: every
# file lands where Debian expects it, a tiny program compiles against the
# installed header with `pkg-config --cflags --libs tokenmgr` and runs, and
# collectd loads the installed plugin.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=fixtures/fixtures.sh
source "$(dirname "$0")/fixtures/fixtures.sh"
fx_setup install "$1"
build=$FX_BUILD stage=$FX_TMP libdir=$2

DESTDIR=$stage cmake --install "$build" >"$stage.log" 2>&1 ||
    { cat "$stage.log"; rm -f "$stage.log"; fx_die "cmake --install failed"; }
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
    usr/share/tokenmgr/alerts/grafana/tokenmgr.json \
    usr/share/tokenmgr/prometheus/tokenmgr-scrape.yml; do
    [ -e "$stage/$f" ] || fx_die "missing /$f"
done
ls "$stage/usr/$libdir"/libtokenmgr.so.0* >/dev/null || fx_die "no versioned libtokenmgr.so.0"
# Only the command is on the PATH: examples and the fake Keepa are not.
extra=$(ls "$stage/usr/bin" | grep -vx tokenmgr || true)
[ -z "$extra" ] || fx_die "/usr/bin holds more than tokenmgr: $extra"
[ -x "$stage/usr/libexec/tokenmgr/restart-workers" ] || fx_die "restart-workers is not executable"
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
flags=$(pkg-config --cflags --libs tokenmgr) || fx_die "pkg-config does not know tokenmgr"
case "$flags" in *"$stage"*) ;; *) fx_die "pkg-config flags do not point into the staging folder: $flags" ;; esac
# The sanitizer build's library needs its runtime in the program too.
san=()
[ "${TKM_SANITIZED:-0}" = 1 ] && san=(-fsanitize=address,undefined)
cc -Wall -Wextra -Werror "${san[@]}" -o "$stage/hello" "$stage/hello.c" $flags ||
    fx_die "a program does not compile against the installed header"
out=$(LD_LIBRARY_PATH=$stage/usr/$libdir "$stage/hello")
[ "$out" = "tokenmgr $(pkg-config --modversion tokenmgr), pool keepa" ] || fx_die "hello printed '$out'"
echo "install: a program built with pkg-config runs: $out"

# collectd loads the installed plugin (the library from the staging folder).
if [ "${TKM_SANITIZED:-0}" = 1 ]; then
    echo "install: collectd loading skipped: the sanitizer build's plugin needs the ASan runtime preloaded"
elif [ -x "${FX_COLLECTD[-1]}" ]; then
    fx_redis_start "$stage/run" || fx_die "redis-server did not start"
    mkdir -p "$stage/collectd"
    cat >"$stage/collectd/tokenmgr.conf" <<CONF
<Plugin tokenmgr>
  <Pool "installed">
    RedisURL "$fx_redis_url"
  </Pool>
</Plugin>
CONF
    # The tests' main collectd.conf, loading tokenmgr.so from the staging
    # folder's collectd plugin directory.
    fx_collectd_conf "$stage/collectd/collectd.conf" HOSTNAME=install-test \
        BASEDIR="$stage/collectd" INTERVAL=1 \
        PLUGIN_DIR="$stage/usr/lib/collectd" \
        PLUGIN_CONF="$stage/collectd/tokenmgr.conf"
    LD_LIBRARY_PATH=$stage/usr/$libdir "${FX_COLLECTD[@]}" -T -C "$stage/collectd/collectd.conf" \
        >"$stage/collectd.out" 2>&1 ||
        { cat "$stage/collectd.out" "$stage/collectd/collectd.log"; fx_die "collectd -T refused the installed plugin"; }
    if grep -q "undefined symbol\|cannot open shared object" "$stage/collectd.out" "$stage/collectd/collectd.log"; then
        cat "$stage/collectd.out" "$stage/collectd/collectd.log"
        fx_die "the installed plugin did not load"
    fi
    echo "install: collectd loads the installed plugin"
fi
echo "install: 1 passed, 0 failed"
