#!/usr/bin/env bash
# The drop-in in both Debian layouts (issue 15 §4), installed with
# `cmake --install` in private namespaces (lib.sh), with Debian's
# redis-server as installed (/etc/redis/redis.conf: TCP 127.0.0.1:6379, its
# Unix socket commented out) and the shipped /etc/tokenmgr/tokenmgr.yaml:
#
#   A. collectd-core alone: /etc/collectd/collectd.conf is the one Include
#      line of the README (nothing else: collectd logs to stderr), with the
#      write_prometheus example snippet.  The plugin reads the pool through
#      the YAML's default URL; the published stall age is the YAML's; the
#      <Recovery> block is in force; then the Unix socket the drop-in
#      mentions: one clear line naming RedisURL while Debian ships it
#      commented out, redis_up 1 once redis.conf enables it.
#   B. the `collectd` package's default collectd.conf (and its
#      collectd.conf.d/), taken from its .deb (`apt-get download collectd`,
#      cached in BUILD_DIR/tests/deployed-cache; skipped without it), with
#      a site's own write_prometheus on [::]:9104: the drop-in loads
#      tokenmgr and leaves that listener alone.  Adapted, because they
#      cannot work in a test: a logfile the test reads (the package logs
#      to syslog only), and `LoadPlugin rrdtool` commented out when
#      librrd8 (a dependency of the collectd package) is not installed.
#
#   debian_layouts.sh SRC_DIR BUILD_DIR     (root; T_KEEP=1 keeps the folder)
set -euo pipefail
cache=${2:?usage: $0 SRC_DIR BUILD_DIR}/tests/deployed-cache
if [ "${TKM_DP_NS:-}" != 1 ] && ! ls "$cache"/collectd_*.deb >/dev/null 2>&1; then
    # Outside the namespaces: they have no network.
    mkdir -p "$cache"
    cp /var/cache/apt/archives/collectd_*.deb "$cache/" 2>/dev/null ||
        (cd "$cache" && apt-get download -q collectd >/dev/null 2>&1) || true
fi
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
dp_enter "$@"

src=$1 build=$2
need collectd redis-server redis-cli curl cmake dpkg-deb
dp_install "$build"
dp_redis_start
tokenmgr sync --tokens 1000 --rate 20 >/dev/null || die "tokenmgr sync (the shipped YAML, Debian's Redis) failed"
ok "tokenmgr reaches Debian's redis-server with the shipped YAML's default redis.url"

metric() { # metric URL NAME: pool keepa's value
    curl -sf "$1" | awk -v n="collectd_tokenmgr_$2" '$1 ~ "^" n "[{]" && $1 ~ /tokenmgr="keepa"/ { print $2; exit }'
}
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
check() { # check WHAT CMD...
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
collectd_run() { # collectd_run LOG: collectd -f in the background
    : >"$1"
    fx_bg "$1" "${FX_COLLECTD[@]}" -f -C /etc/collectd/collectd.conf
    dp_collectd_pid=$fx_pid
}
collectd_stop() { fx_stop TERM "$dp_collectd_pid"; dp_collectd_pid=; }
count() { grep -c -E -- "$1" "$2" 2>/dev/null || true; }

# ---- A. collectd-core alone ----------------------------------------------------------
include=$(grep -x 'Include "/etc/collectd/collectd.conf.d/\*\.conf"' "$src/README.md" | head -n 1)
[ -n "$include" ] || die "the README does not show the Include line"
[ ! -e /etc/collectd/collectd.conf ] || rm /etc/collectd/collectd.conf # collectd-core ships none
printf '%s\n' "$include" >/etc/collectd/collectd.conf
cp /usr/share/doc/tokenmgr/examples/collectd.conf.d/write_prometheus.conf /etc/collectd/collectd.conf.d/
a=http://127.0.0.1:9103/metrics
if "${FX_COLLECTD[@]}" -T -C /etc/collectd/collectd.conf >"$T_DIR/a-T.out" 2>&1; then
    ok "A: collectd -T accepts a collectd.conf of the one Include line"
else
    cat "$T_DIR/a-T.out"
    not_ok "A: collectd -T refused the one Include line"
fi
collectd_run "$T_DIR/a.log"
if fx_wait_for 30 metric_is "$a" redis_up 1; then
    ok "A: the drop-in reads Debian's redis-server through the YAML's default URL: redis_up 1, tokens $(metric "$a" tokens)"
else
    cat "$T_DIR/a.log"
    not_ok "A: no redis_up 1 at $a"
fi
check "A: the stall age in force is the YAML's: $(metric "$a" stall_heartbeat_age_seconds)" \
    metric_is "$a" stall_heartbeat_age_seconds 900
check "A: the <Recovery> block is in force: recoveries_total $(metric "$a" recoveries_total)" \
    metric_is "$a" recoveries_total 0
check "A: the drop-in overrides nothing of the YAML (no override logged)" \
    test "$(count 'overrides' "$T_DIR/a.log")" -eq 0
check "A: no ERROR from the tokenmgr plugin" test "$(count 'tokenmgr plugin: .*(ERROR|unavailable|refuse)' "$T_DIR/a.log")" -eq 0
collectd_stop

# The Unix socket the drop-in mentions, while Debian ships it commented out.
sock=/run/redis/redis-server.sock
sed -i "s|^\\( *\\)#RedisURL \"redis://127.0.0.1:6379/0\"|\\1RedisURL \"unix://$sock\"|" \
    /etc/collectd/collectd.conf.d/tokenmgr.conf
grep -q "^ *RedisURL \"unix://$sock\"" /etc/collectd/collectd.conf.d/tokenmgr.conf || die "could not set RedisURL"
collectd_run "$T_DIR/a-sock.log"
fx_wait_for 30 grep -q 'Redis unavailable' "$T_DIR/a-sock.log" || true
line=$(grep 'Redis unavailable' "$T_DIR/a-sock.log" | head -n 1)
if [ "$(count 'Redis unavailable' "$T_DIR/a-sock.log")" -eq 1 ] && grep -q 'check RedisURL' <<<"$line" &&
    grep -q "$sock: No such file or directory" <<<"$line"; then
    ok "A: RedisURL on Debian's commented-out socket: one line naming the option: ${line#*: }"
else
    cat "$T_DIR/a-sock.log"
    not_ok "A: the wrong socket path was not said in one clear line"
fi
collectd_stop
dp_redis_stop
sed -i 's|^# unixsocket /run/redis/redis-server.sock$|unixsocket /run/redis/redis-server.sock|' /etc/redis/redis.conf
grep -q '^unixsocket /run/redis/redis-server.sock$' /etc/redis/redis.conf || die "could not enable Redis' socket"
dp_redis_start
collectd_run "$T_DIR/a-sock2.log"
check "A: with unixsocket uncommented in redis.conf, the socket URL reads the pool" \
    fx_wait_for 30 metric_is "$a" redis_up 1
collectd_stop
rm /etc/collectd/collectd.conf.d/write_prometheus.conf

# ---- B. the collectd package's default configuration -------------------------------------
deb=$(find "$cache" -maxdepth 1 -name 'collectd_*.deb' 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
    say "note: B skipped: no collectd .deb (apt-get download collectd had no network?)"
    t_done
    exit 0
fi
# The drop-in as installed again (A edited it), then the package's files.
DESTDIR=$T_DIR/stage cmake --install "$build" >/dev/null 2>&1 || die "cmake --install (stage) failed"
cp "$T_DIR/stage/etc/collectd/collectd.conf.d/tokenmgr.conf" /etc/collectd/collectd.conf.d/tokenmgr.conf
dpkg-deb -x "$deb" "$T_DIR/deb"
cp "$T_DIR/deb/etc/collectd/collectd.conf" /etc/collectd/collectd.conf
cp "$T_DIR/deb/etc/collectd/collectd.conf.d/"*.conf /etc/collectd/collectd.conf.d/
grep -q '^<Include "/etc/collectd/collectd.conf.d">' /etc/collectd/collectd.conf ||
    die "the package's collectd.conf does not include the drop-in folder"
adapted="a logfile (syslog has no reader here)"
if ! ldconfig -p | grep -q 'librrd.so.8'; then
    sed -i 's/^LoadPlugin rrdtool$/#LoadPlugin rrdtool/' /etc/collectd/collectd.conf
    adapted+=", LoadPlugin rrdtool commented out (librrd8 is not installed)"
fi
mkdir -p /var/lib/collectd
printf 'LoadPlugin logfile\n<Plugin logfile>\n  File "%s"\n  Timestamp true\n</Plugin>\n' \
    "$T_DIR/b.log" >/etc/collectd/collectd.conf.d/zz-test-logfile.conf
# The site's own write_prometheus, on all addresses, port 9104.
printf 'LoadPlugin write_prometheus\n<Plugin write_prometheus>\n  Port "9104"\n</Plugin>\n' \
    >>/etc/collectd/collectd.conf
say "B: $(basename "$deb")'s collectd.conf and collectd.conf.d/, adapted: $adapted; the site's write_prometheus on port 9104"
if "${FX_COLLECTD[@]}" -T -C /etc/collectd/collectd.conf >"$T_DIR/b-T.out" 2>&1; then
    ok "B: collectd -T accepts the package's collectd.conf with the drop-in"
else
    cat "$T_DIR/b-T.out" "$T_DIR/b.log"
    not_ok "B: collectd -T refused the package's collectd.conf with the drop-in"
fi
: >"$T_DIR/b.log"
fx_bg "$T_DIR/b.out" "${FX_COLLECTD[@]}" -f -C /etc/collectd/collectd.conf
dp_collectd_pid=$fx_pid
b=http://127.0.0.1:9104/metrics
if fx_wait_for 30 metric_is "$b" redis_up 1; then
    ok "B: the package's Include reads the drop-in: redis_up 1 on the site's :9104, tokens $(metric "$b" tokens)"
else
    cat "$T_DIR/b.out" "$T_DIR/b.log"
    not_ok "B: no tokenmgr series on the site's write_prometheus"
fi
check "B: the site's write_prometheus keeps its address: $(grep -o 'Listening on .*' "$T_DIR/b.log" | head -n 1)" \
    grep -q -E 'write_prometheus plugin: Listening on \[(::|0\.0\.0\.0)\]:9104' "$T_DIR/b.log"
check "B: nothing rebinds it to 127.0.0.1:9103" sh -c "! curl -sf -o /dev/null http://127.0.0.1:9103/metrics"
check "B: the pool is read once (one collectd_tokenmgr_redis_up series)" \
    test "$(curl -sf "$b" | grep -c '^collectd_tokenmgr_redis_up{')" -eq 1
collectd_stop
t_done
