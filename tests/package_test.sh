#!/usr/bin/env bash
# The Debian packages (debian/) as a user meets them, on this machine, as
# root: built with Debian's own tools from a copy of the source by the
# README's "Install on Debian" commands, checked by lintian, installed with
# apt-get, then: the installed command, man pages, library (pkg-config) and
# examples work; a machine without collectd would refuse the plugin package
# and take the others; edited conffiles survive a reinstall and an upgrade
# that ships a new drop-in; a remove sets the drop-in aside so collectd
# still starts; collectd loads the installed plugin with the shipped drop-in
# and keeps running through an `apt-get purge`; after the purge nothing of
# ours is left under /usr, /etc and /var/lib.
#
# usage: package_test.sh SOURCE_DIR        exit 77: skipped (with why)
#
# The machine is restored whatever happens: every package of ours is purged
# on exit.  Timings per step go to stdout.
set -uo pipefail
src=$(cd "$1" && pwd)

skip() { echo "package: SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] ||
    skip "needs root: it installs and purges packages with apt-get (CI runs as root)"
for tool in dpkg-buildpackage dh lintian apt-get; do
    command -v "$tool" >/dev/null ||
        skip "$tool is missing (apt-get install dpkg-dev debhelper devscripts lintian, as ./dev.sh does)"
done
collectd=$(command -v collectd || echo /usr/sbin/collectd)
[ -x "$collectd" ] || skip "collectd is missing (apt-get install collectd-core)"
command -v redis-server >/dev/null || skip "redis-server is missing"

# Our packages and the files a `cmake --install` to / would have left: the
# test would replace, then purge them.
ours() {
    dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' 'libtokenmgr*' 'tokenmgr*' \
        'collectd-tokenmgr*' 'python3-tokenmgr*' 2>/dev/null | awk '$2 !~ /^u/ { print $1 }'
}
[ -z "$(ours)" ] ||
    skip "tokenmgr packages are installed here ($(ours | tr '\n' ' ')): the test would purge them"
for f in /etc/tokenmgr /etc/collectd/collectd.conf.d/tokenmgr.conf /usr/bin/tokenmgr \
    /usr/lib/collectd/tokenmgr.so /usr/libexec/tokenmgr /usr/share/tokenmgr \
    /usr/include/tokenmgr.h; do
    [ ! -e "$f" ] || skip "$f exists (a cmake --install?): the test would replace and purge it"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tkm-package-XXXXXX")
debs=$tmp/debs # the source copy is $debs/src: dpkg-buildpackage writes to ..
dropin=/etc/collectd/collectd.conf.d/tokenmgr.conf
yaml=/etc/tokenmgr/tokenmgr.yaml
rpid="" cpid=""
export DEBIAN_FRONTEND=noninteractive
# The README's commands as written (sudo, apt-get without -y).
export APT_CONFIG=$tmp/apt.conf
echo 'APT::Get::Assume-Yes "true";' >"$APT_CONFIG"
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexec "$@"\n' >"$tmp/bin/sudo"
chmod +x "$tmp/bin/sudo"
export PATH=$tmp/bin:$PATH

cleanup() {
    [ -z "$cpid" ] || { kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null; }
    [ -z "$rpid" ] || { kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null; }
    local left
    left=$(ours)
    if [ -n "$left" ]; then
        echo "package: purging what is left: $left"
        # shellcheck disable=SC2086
        apt-get purge -y -q $left >"$tmp/cleanup.log" 2>&1 || cat "$tmp/cleanup.log"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
not_ok() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >"$tmp/check.out" 2>&1; then ok "$what"; else
        sed 's/^/    | /' "$tmp/check.out" | tail -20
        not_ok "$what"
    fi
}
die() { echo "FAIL $*"; echo "package: $passed passed, $((failed + 1)) failed"; exit 1; }
t0=$(date +%s) step_t=$t0
step() {
    local now
    now=$(date +%s)
    echo "== [$((now - t0))s, previous step $((now - step_t))s] $*"
    step_t=$now
}
run() { # run LOG COMMAND...: quiet unless it fails
    local log=$1
    shift
    "$@" >"$log" 2>&1 || { tail -40 "$log"; return 1; }
}

# Everything under /usr, /etc, /var/lib now, to tell afterwards what we left.
snapshot() {
    find /usr /etc /var/lib -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt \
        -o -path /var/lib/ucf -o -path /var/lib/man-db \) -prune -o -print 2>/dev/null | sort
}
snapshot >"$tmp/before"

step "copy the source (tracked and new files, no build folders)"
mkdir -p "$debs/src"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$src" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$src/$f" ] && printf '%s\0' "$f"; done |
        tar -C "$src" --null -T - -cf - | tar -C "$debs/src" -xf - ||
        die "could not copy the source"
else
    tar -C "$src" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -C "$debs/src" -xf - ||
        die "could not copy the source"
fi

step "the README's \"Install on Debian\" commands (DEB_BUILD_OPTIONS=nocheck parallel=2)"
python3 - "$src/README.md" >"$tmp/install.sh" <<'PY' || die "no sh package block in the README"
import re, sys
blocks = re.findall(r"^```sh package\n(.*?)^```", open(sys.argv[1]).read(), flags=re.S | re.M)
if not blocks:
    sys.exit(1)
print(blocks[0])
PY
grep . "$tmp/install.sh" | sed 's/^/    $ /'
export DEB_BUILD_OPTIONS="nocheck parallel=2"
(cd "$debs/src" && run "$tmp/readme-install.log" bash -e "$tmp/install.sh") ||
    die "the README's install commands failed"
unset DEB_BUILD_OPTIONS
installed=$(ours | sort | tr '\n' ' ')
[ "$installed" = "collectd-tokenmgr libtokenmgr0 tokenmgr " ] ||
    die "the README's commands installed '$installed'"
ok "the README's commands built the packages and installed libtokenmgr0, tokenmgr, collectd-tokenmgr"

cd "$debs" || die "no $debs"
mapfile -t all < <(ls ./*.deb)
names=$(for d in "${all[@]}"; do dpkg-deb -f "$d" Package; done | grep -v -- -dbgsym$ | sort | tr '\n' ' ')
check "six packages: $names" \
    test "$names" = "collectd-tokenmgr libtokenmgr-dev libtokenmgr0 python3-tokenmgr tokenmgr tokenmgr-examples "
for d in "${all[@]}"; do
    case $d in *-dbgsym_*) continue ;; esac
    echo "    $(dpkg-deb -f "$d" Package): $(dpkg-deb -c "$d" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); printf "%s ", $6 }')"
done
onpath=$(for d in "${all[@]}"; do dpkg-deb -c "$d"; done | awk '$1 !~ /^d/ { print $6 }' |
    grep -E '^\./(usr/)?s?bin/' | grep -v '^\./usr/bin/tokenmgr$' || true)
check "no package puts anything but tokenmgr on the PATH" test -z "$onpath"
check "libtokenmgr0 holds the library, libtokenmgr-dev the header, .so and tokenmgr.pc" sh -c "
    dpkg-deb -c libtokenmgr0_*.deb | grep -q '/libtokenmgr\.so\.0 -> libtokenmgr\.so\.0\.' &&
    dpkg-deb -c libtokenmgr-dev_*.deb | grep -q 'usr/include/tokenmgr.h' &&
    dpkg-deb -c libtokenmgr-dev_*.deb | grep -q 'pkgconfig/tokenmgr.pc' &&
    dpkg-deb -c libtokenmgr-dev_*.deb | grep -q 'libtokenmgr.so -> '"
check "conffiles: tokenmgr has $yaml, collectd-tokenmgr the drop-in" sh -c "
    dpkg-deb -I tokenmgr_*.deb conffiles | grep -qx '$yaml' &&
    dpkg-deb -I collectd-tokenmgr_*.deb conffiles | grep -qx '$dropin'"

step "lintian"
lintian --fail-on error,warning ./*.changes >"$tmp/lintian.out" 2>&1
lrc=$?
grep -v 'running with root privileges' "$tmp/lintian.out" | sed 's/^/    /'
check "lintian: no errors, no warnings" test "$lrc" = 0

step "a machine without collectd (apt, simulated on a copy of dpkg's status without collectd-core, no archive)"
mkdir -p "$tmp/sim/lists/partial" "$tmp/sim/cache/archives/partial"
python3 - /var/lib/dpkg/status >"$tmp/sim/status" <<'PY'
import re, sys
for st in open(sys.argv[1]).read().split("\n\n"):
    if not st.strip() or re.search(r"^Package: collectd-core$", st, re.M) \
            or re.search(r"^(Pre-)?Depends:.*\bcollectd-core\b", st, re.M):
        continue
    print(st + "\n")
PY
sim() {
    apt-get -s -q -o Dir::State::status="$tmp/sim/status" -o Dir::Etc::SourceList=/dev/null \
        -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$tmp/sim/lists" \
        -o Dir::Cache="$tmp/sim/cache" -o Debug::NoLocking=1 install "$@"
}
check "without collectd the command and library install" \
    sim ./libtokenmgr0_*.deb ./tokenmgr_*.deb ./libtokenmgr-dev_*.deb
if sim ./libtokenmgr0_*.deb ./tokenmgr_*.deb ./collectd-tokenmgr_*.deb >"$tmp/sim.out" 2>&1; then
    not_ok "without collectd, apt accepted collectd-tokenmgr"
else
    grep -q 'collectd-tokenmgr : Depends: collectd-core' "$tmp/sim.out" &&
        ok "without collectd the plugin package is refused: $(grep -m1 'Depends: collectd-core' "$tmp/sim.out" | sed 's/^ *//')" ||
        { cat "$tmp/sim.out"; not_ok "collectd-tokenmgr refused, but not for collectd-core"; }
fi

step "install the rest: apt-get install ./*.deb"
run "$tmp/install-all.log" apt-get install -q ./*.deb || die "apt-get install ./*.deb failed"
ok "apt-get install ./*.deb"

step "the installed command, man pages, library and examples"
check "tokenmgr --version is the header's" sh -c "
    tokenmgr --version | grep -qx 'tokenmgr $(sed -n 's/^#define TKM_VERSION[[:space:]]*"\(.*\)"$/\1/p' "$src/lib/include/tokenmgr.h")'"
check "tokenmgr config check reads the shipped $yaml" sh -c "tokenmgr config check | grep -q '$yaml'"
check "python3-tokenmgr imports on the installed library (Debian's python3)" sh -c "
    /usr/bin/python3 -c 'import tokenmgr, tokenmgr.compat; print(tokenmgr.__version__)' |
    grep -qx '$(sed -n 's/^#define TKM_VERSION[[:space:]]*"\(.*\)"$/\1/p' "$src/lib/include/tokenmgr.h")'"
redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no \
    --dir "$tmp" >/dev/null 2>&1 &
rpid=$!
for _ in $(seq 100); do [ -S "$tmp/redis.sock" ] && break; sleep 0.05; done
check "tokenmgr sync and status against Redis" sh -c "
    tokenmgr --redis 'unix://$tmp/redis.sock' --pool pkgtest sync --tokens 100 --rate 20 >/dev/null &&
    tokenmgr --redis 'unix://$tmp/redis.sock' --pool pkgtest status --json | grep -q '\"tokens\":1[0-9][0-9]'"
# The man pages, from the packages (a Docker image may exclude /usr/share/man).
dpkg-deb --fsys-tarfile tokenmgr_*.deb | tar -xOf - ./usr/share/man/man1/tokenmgr.1.gz |
    gunzip >"$tmp/tokenmgr.1"
dpkg-deb --fsys-tarfile collectd-tokenmgr_*.deb |
    tar -xOf - ./usr/share/man/man5/collectd-tokenmgr.5.gz | gunzip >"$tmp/collectd-tokenmgr.5"
MANWIDTH=200 man -l "$tmp/tokenmgr.1" 2>/dev/null >"$tmp/tokenmgr.1.txt"
MANWIDTH=200 man -l "$tmp/collectd-tokenmgr.5" 2>/dev/null >"$tmp/collectd-tokenmgr.5.txt"
missing=""
for c in $(tokenmgr help | sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z]\+\).*/\1/p' | sort -u); do
    grep -qw -- "$c" "$tmp/tokenmgr.1.txt" || missing+=" $c"
done
for s in 'EXIT STATUS' ENVIRONMENT FILES TOKENMGR_REDIS_URL; do
    grep -q "$s" "$tmp/tokenmgr.1.txt" || missing+=" '$s'"
done
check "tokenmgr(1) has every command of the installed tokenmgr, exit codes, environment, files" \
    test -z "$missing"
missing=""
for o in $(tokenmgr help options --markdown | awk -F'|' 'NR > 2 { print $6 }' | tr -d '`' | sed 's/<Recovery>//; s/ //g' | grep .); do
    grep -qw -- "$o" "$tmp/collectd-tokenmgr.5.txt" || missing+=" $o"
done
for o in ConfigFile Layout WorkerMetrics '<Recovery>'; do
    grep -q -- "$o" "$tmp/collectd-tokenmgr.5.txt" || missing+=" $o"
done
check "collectd-tokenmgr(5) has every collectd option of \`tokenmgr help options\` and the plugin's own" \
    test -z "$missing"
cat >"$tmp/hello.c" <<'C'
#include <stdio.h>
#include <tokenmgr.h>

int main(void)
{
    printf("%s\n", tkm_version());
    return 0;
}
C
check "a program builds with pkg-config tokenmgr and runs" sh -c "
    cc -Wall -Werror -o '$tmp/hello' '$tmp/hello.c' \$(pkg-config --cflags --libs tokenmgr) &&
    test \"\$('$tmp/hello')\" = \"\$(pkg-config --modversion tokenmgr)\""
check "the examples sit in /usr/libexec/tokenmgr and run" sh -c "
    /usr/libexec/tokenmgr/keepa_worker --help 2>&1 | grep -q 'usage: keepa_worker' &&
    timeout 5 /usr/libexec/tokenmgr/fake_keepa --port 0 2>&1 | grep -q -m1 listening"
for unit in /lib/systemd/system/keepa-worker@.service /lib/systemd/system/fake-keepa.service; do
    exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
    check "$(basename "$unit") starts an installed program ($exe)" test -x "$exe"
done
check "restart-workers is installed and executable" test -x /usr/libexec/tokenmgr/restart-workers

step "edited conffiles survive a reinstall"
echo "# edited by the package test" >>"$yaml"
echo "# edited by the package test" >>"$dropin"
run "$tmp/reinstall.log" apt-get install -q --reinstall ./*.deb || die "reinstall failed"
check "the edits are kept, no .dpkg-* copies" sh -c "
    tail -n 1 '$yaml' | grep -q 'edited by the package test' &&
    tail -n 1 '$dropin' | grep -q 'edited by the package test' &&
    ! ls /etc/tokenmgr/*.dpkg-* /etc/collectd/collectd.conf.d/*.dpkg-* 2>/dev/null"

step "an upgrade that ships a new drop-in (--force-confold, as unattended upgrades run)"
version=$(dpkg-deb -f collectd-tokenmgr_*.deb Version)
dpkg-deb -R collectd-tokenmgr_*.deb "$tmp/repack"
sed -i "s/^Version: .*/Version: $version+pkgtest1/" "$tmp/repack/DEBIAN/control"
echo "# a line the next version ships" >>"$tmp/repack$dropin"
dpkg-deb --root-owner-group -b "$tmp/repack" "$tmp/upgrade.deb" >/dev/null ||
    die "could not repack collectd-tokenmgr"
run "$tmp/upgrade.log" apt-get install -q -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "$tmp/upgrade.deb" || die "the upgrade failed"
check "the edited drop-in is kept, the new one saved as $dropin.dpkg-dist" sh -c "
    dpkg-query -W -f='\${Version}' collectd-tokenmgr | grep -qx '$version+pkgtest1' &&
    tail -n 1 '$dropin' | grep -q 'edited by the package test' &&
    tail -n 1 '$dropin.dpkg-dist' | grep -q 'the next version ships'"
rm -f "$dropin.dpkg-dist"

# A collectd.conf as Debian's collectd package ships it: the drop-ins, then
# our private pool.
cat >"$tmp/collectd.conf" <<CONF
Hostname "package-test"
FQDNLookup false
Interval 1
BaseDir "$tmp"
PIDFile "$tmp/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
PluginDir "/usr/lib/collectd"
LoadPlugin logfile
<Plugin logfile>
  File "$tmp/collectd.log"
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "$tmp/csv"
</Plugin>
<Include "/etc/collectd/collectd.conf.d">
  Filter "*.conf"
</Include>
CONF
cat >"$tmp/pool.conf" <<CONF
<Plugin tokenmgr>
  <Pool "pkgtest">
    RedisURL "unix://$tmp/redis.sock"
  </Pool>
</Plugin>
CONF

step "apt-get remove collectd-tokenmgr: collectd still starts; a reinstall brings the drop-in back"
run "$tmp/remove.log" apt-get remove -q collectd-tokenmgr || die "remove failed"
check "the drop-in is set aside, out of collectd's *.conf" sh -c "
    test ! -e '$dropin' && test -f '$dropin.removed'"
check "collectd -T accepts its configuration without the plugin" \
    timeout 30 "$collectd" -T -C "$tmp/collectd.conf"
run "$tmp/reinstall2.log" apt-get install -q "$tmp/upgrade.deb" || die "reinstall failed"
check "reinstalled: the drop-in is back with its edit" sh -c "
    tail -n 1 '$dropin' | grep -q 'edited by the package test' && test ! -e '$dropin.removed'"

step "collectd loads the installed plugin with the shipped drop-in"
echo "Include \"$tmp/pool.conf\"" >>"$tmp/collectd.conf"
"$collectd" -f -C "$tmp/collectd.conf" >"$tmp/collectd.out" 2>&1 &
cpid=$!
tokens_file() { # tokens-DATE: the plugin registers its own types
    local f
    for f in "$tmp"/csv/package-test/tokenmgr-pkgtest/tokens-*; do
        [ -f "$f" ] && { echo "$f"; return; }
    done
}
for _ in $(seq 100); do [ -n "$(tokens_file)" ] && break; sleep 0.1; done
f=$(tokens_file)
if [ -n "$f" ] && [ "$(tail -n 1 "$f" | cut -d, -f2 | cut -d. -f1)" -ge 100 ]; then
    ok "collectd publishes the pool synced by the installed tokenmgr: $(basename "$f") $(tail -n 1 "$f")"
else
    sed 's/^/    | /' "$tmp/collectd.log" "$tmp/collectd.out" 2>/dev/null | tail -20
    not_ok "no tokens value from the installed plugin"
fi
check "the drop-in's own pool is read too" sh -c "
    ls '$tmp/csv/package-test' | grep '^tokenmgr-' | grep -vqx tokenmgr-pkgtest"

step "apt-get purge (the README's line) while collectd runs with the plugin loaded"
lines=$(wc -l <"$f" 2>/dev/null || echo 0)
python3 - "$src/README.md" >"$tmp/purge.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(re.search(r"^```sh\n(sudo apt-get purge .*?)\n```", text, flags=re.S | re.M).group(1))
PY
grep . "$tmp/purge.sh" | sed 's/^/    $ /'
run "$tmp/purge.log" bash -e "$tmp/purge.sh" || die "the README's purge failed"
check "no package of ours is left, not even its configuration" test -z "$(ours)"
check "collectd keeps running" kill -0 "$cpid"
for _ in $(seq 150); do [ "$(wc -l <"$f")" -gt "$lines" ] && break; sleep 0.1; done
check "the loaded plugin keeps reading after the purge" test "$(wc -l <"$f")" -gt "$lines"
kill -TERM "$cpid"
wait "$cpid"
crc=$?
cpid=""
check "collectd stops cleanly (SIGTERM, exit 0)" test "$crc" = 0

step "nothing of ours left under /usr, /etc, /var/lib"
snapshot >"$tmp/after"
comm -13 "$tmp/before" "$tmp/after" >"$tmp/new"
leftover=$(grep -E 'tokenmgr|keepa' "$tmp/new" || true)
[ -z "$leftover" ] || echo "$leftover" | sed 's/^/    left: /'
check "no new path names tokenmgr or keepa" test -z "$leftover"
others=$(grep -vE 'tokenmgr|keepa' "$tmp/new" | head -n 5)
[ -z "$others" ] || echo "$others" | sed 's/^/    (new, not ours: /; s/$/)/'

step "done"
echo "package: $passed passed, $failed failed"
[ "$failed" = 0 ]
