#!/usr/bin/env bash
# conf/systemd/*.service through `systemd-analyze verify` (binaries replaced
# by copies of /bin/true, since they are not installed here), plus what
# verify does not judge: start limits in [Unit], graceful stop, no watchdog.
source "$(dirname "$0")/lib.sh"

src=$1
need systemd-analyze python3
units=(keepa-worker@.service fake-keepa.service)

mkdir -p "$T_DIR/units" "$T_DIR/bin"
for b in keepa_worker fake_keepa; do cp /bin/true "$T_DIR/bin/$b"; done
stage() { # stage UNIT [SED_SCRIPT]: a copy with the test binaries
    sed -e "s|/usr/libexec/tokenmgr/keepa_worker|$T_DIR/bin/keepa_worker|" \
        -e "s|/usr/libexec/tokenmgr/fake_keepa|$T_DIR/bin/fake_keepa|" \
        -e "${2:-}" "$src/conf/systemd/$1" >"$T_DIR/units/$1"
}
verify() { # verify UNIT: rc 0 and not a single warning
    systemd-analyze verify --man=no "$T_DIR/units/$1" >"$T_DIR/verify.out" 2>&1 &&
        [ ! -s "$T_DIR/verify.out" ]
}

for u in "${units[@]}"; do
    stage "$u"
    if verify "$u"; then
        ok "systemd-analyze verify $u: clean"
    else
        sed 's/^/    | /' "$T_DIR/verify.out"
        not_ok "systemd-analyze verify $u"
    fi
done

# verify does catch what matters here (so the clean result means something):
# a start limit in the wrong section, a missing executable.
stage keepa-worker@.service '/^\[Service\]/a StartLimitIntervalSec=600'
if verify keepa-worker@.service; then
    not_ok "verify missed StartLimitIntervalSec in [Service]"
elif grep -q "Unknown key 'StartLimitIntervalSec' in section \[Service\]" "$T_DIR/verify.out"; then
    ok "verify flags StartLimitIntervalSec in [Service]"
else
    sed 's/^/    | /' "$T_DIR/verify.out"
    not_ok "verify failed, but not on the misplaced start limit"
fi
stage keepa-worker@.service "s|$T_DIR/bin/keepa_worker|$T_DIR/bin/missing|"
if verify keepa-worker@.service; then
    not_ok "verify missed a missing ExecStart binary"
else
    ok "verify flags a missing ExecStart binary"
fi

python3 - "$src/conf/systemd" <<'PY' || not_ok "unit conventions"
import re, sys
def sections(path):
    out, cur = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            cur = out.setdefault(m.group(1), [])
        else:
            k, _, v = line.partition("=")
            cur.append((k.strip(), v.strip()))
    return out
bad = []
def need(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        bad.append(msg)
w = sections(sys.argv[1] + "/keepa-worker@.service")
keys = lambda s: [k for k, _ in w.get(s, [])]
val = lambda s, k: [v for kk, v in w.get(s, []) if kk == k]
need("StartLimitIntervalSec" in keys("Unit") and "StartLimitBurst" in keys("Unit"),
     "keepa-worker@: StartLimitIntervalSec and StartLimitBurst in [Unit]")
need(not [k for k in keys("Service") if k.startswith("StartLimit")],
     "keepa-worker@: no StartLimit* in [Service]")
need(val("Service", "Restart") == ["on-failure"], "keepa-worker@: Restart=on-failure")
need(val("Service", "KillSignal") == ["SIGTERM"] and val("Service", "TimeoutStopSec"),
     "keepa-worker@: KillSignal=SIGTERM with a TimeoutStopSec")
need(not val("Service", "WatchdogSec"), "keepa-worker@: no WatchdogSec (heartbeats live in Redis)")
ex = " ".join(val("Service", "ExecStart"))
need(ex.startswith("/usr/libexec/tokenmgr/keepa_worker ") and "--output /var/lib/keepa-worker/%i/" in ex
     and "--state /var/lib/keepa-worker/%i" in ex and "--worker %H:%i" in ex,
     "keepa-worker@: ExecStart /usr/libexec/tokenmgr/keepa_worker --output/--state in /var/lib/keepa-worker/%i, --worker %H:%i")
need(bool(val("Service", "EnvironmentFile")), "keepa-worker@: EnvironmentFile")
need(val("Service", "StandardOutput") == ["journal"] and val("Service", "StandardError") == ["journal"],
     "keepa-worker@: logs to the journal")
sys.exit(1 if bad else 0)
PY
t_done
