#!/usr/bin/env bash
# tokenmgr's one entry point for developers and CI.
#
#   ./dev.sh demo [--duration S] [--pool-config FILE] [--out DIR]
#                            install what is missing, build, run the demo
#   ./dev.sh test [FLAVOUR]  install what is missing, build (-Wall -Wextra
#                            -Werror), run every test through CTest
#   ./dev.sh build [FLAVOUR] install and build only
#       FLAVOUR (any of, --asan and --release excluded together):
#       --asan     Debug with ASan + UBSan, in build-asan/
#       --release  CMAKE_BUILD_TYPE=Release (what packagers build)
#       --clang    clang instead of gcc (installed if missing)
#       Builds go to build/, or build-<flavours>/ (build-release-clang/...).
#   ./dev.sh format [--check] clang-format the C sources (or only check)
#   ./dev.sh bench           build, run the benchmarks (a few minutes):
#                            tables on stdout, JSON in build/bench/results.json
#   ./dev.sh fuzz [SECONDS] [TARGET...]  build the libFuzzer targets with
#                            clang (ASan + UBSan), run each for SECONDS (60)
#   ./dev.sh mutate [NAME|GLOB...] [--list|--check|--subset N]
#                            curated mutation testing (tests/mutation/):
#                            each mutant applied alone to a scratch copy in
#                            build-mutation/, rebuilt, its tests run; any
#                            survivor fails (default: every mutant)
#
# Dependencies come from Debian packages, installed with apt-get as root or
# through sudo.  Every build treats warnings as errors (-DTKM_WERROR=ON) and
# needs collectd for the plugin's tests (-DTKM_REQUIRE_COLLECTD=ON).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$top"

packages=(build-essential cmake pkg-config libhiredis-dev libyaml-dev check
          redis-server redis-tools redis-sentinel libcurl4-openssl-dev libyajl-dev zlib1g-dev
          libmicrohttpd-dev collectd-core collectd-dev libmicrohttpd12
          libprotobuf-c1 curl
          # the operations tests (tests/alerts/): promtool and prometheus,
          # amtool and alertmanager, webhook, collectdctl, YAML for python3
          prometheus prometheus-alertmanager webhook collectd-utils python3-yaml
          # the Debian packages (debian/, tests/package_test.sh)
          debhelper devscripts lintian
          # the Python binding (bindings/python/): its tests, and the
          # documented `pip install` into a venv, all from Debian
          python3-pytest python3-pip python3-setuptools python3-venv
          python3-wheel)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
[ -t 2 ] || say() { printf '==> %s\n' "$*" >&2; }

install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "dev.sh: need root or sudo to install: ${missing[*]}" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Only `./dev.sh fuzz` needs these.
fuzz_packages=(clang libclang-rt-14-dev)

builddir=build
build_type=RelWithDebInfo
asan=0
compiler=()
extra_packages=()

parse_flavour() {
    local suffix=""
    for a in "$@"; do
        case "$a" in
        --asan | --release)
            if [ "$build_type" != RelWithDebInfo ]; then
                echo "dev.sh: --asan and --release exclude each other" >&2
                exit 64
            fi
            if [ "$a" = --asan ]; then
                build_type=Debug
                asan=1
            else
                build_type=Release
            fi
            suffix+=-${a#--}
            ;;
        --clang)
            compiler=(-DCMAKE_C_COMPILER=clang)
            extra_packages=("${fuzz_packages[@]}")
            suffix+=-clang
            ;;
        *)
            echo "dev.sh: unknown option '$a'" >&2
            exit 64
            ;;
        esac
    done
    builddir=build$suffix
}

build() {
    install_missing "${packages[@]}" "${extra_packages[@]}"
    say "building in $builddir/"
    cmake -S . -B "$builddir" -DCMAKE_BUILD_TYPE="$build_type" \
        -DTKM_SANITIZE="$([ $asan = 1 ] && echo ON || echo OFF)" \
        -DTKM_WERROR=ON -DTKM_REQUIRE_COLLECTD=ON "${compiler[@]}" >/dev/null
    cmake --build "$builddir" -j "$(nproc)"
}

run_tests() {
    build
    say "running the tests"
    if [ $asan = 1 ]; then
        # Check forks each test; leaks are reported per process.
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    fi
    local exclude=()
    # The Debian packages are built by dpkg-buildpackage whatever the
    # flavour: tested once, in the plain run.
    [ "$builddir" = build ] || exclude=(-LE '^package$')
    ctest --test-dir "$builddir" --output-on-failure -j 2 "${exclude[@]}"
}

format() {
    local files=()
    mapfile -t files < <(git ls-files '*.c' '*.h')
    if [ "${1:-}" = --check ]; then
        install_missing clang-format
        clang-format --dry-run -Werror "${files[@]}"
        say "clang-format: ${#files[@]} files clean"
    else
        clang-format -i "${files[@]}"
    fi
}

# Every benchmark prints its table and writes its JSON; results.json joins
# them with the machine they ran on.  Each program stops its own servers.
bench() {
    build
    local out=$builddir/bench failed=0 name
    mkdir -p "$out"
    local cpu redis started load
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    redis=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    say "benchmarks on $(nproc) cores, ${cpu:-unknown CPU}, Redis ${redis:-?}," \
        "load $load"
    run_bench() {
        local file=$1
        name=$2
        shift 2
        say "$name $*"
        "$builddir/tests/$name" "$@" --json "$out/$file.json" ||
            { failed=1; echo null >"$out/$file.json"; }
    }
    # A full bucket drained by 1..64 workers, then the steady state from an
    # empty one (no first drain) with 16 and 64.
    run_bench policy bench_policy --periods 10
    run_bench policy_steady bench_policy --periods 100 --period-ms 250 --initial 0 --workers 16,64
    # The line over runs long enough for each worker to be served several
    # times (over 1.7 calls a worker, the round trips are the start's and
    # the stop's and fairness is the costs' spread): the steady state over
    # 600 periods, a full bucket drained over 300; and two classes
    # weighted 3:1, both saturated.
    run_bench policy_long bench_policy --periods 600 --period-ms 250 --initial 0 --workers 16,64 --policy tokenmgr
    run_bench policy_drain_long bench_policy --periods 300 --period-ms 250 --workers 16,64 --policy tokenmgr
    run_bench policy_classes bench_policy --periods 100 --period-ms 250 --initial 0 --workers 16 --policy tokenmgr --classes 3:1
    # The same with /deal pages only: a mix whose lower class is due about
    # once a period, where its longest drought shows the line's own bound
    # (the mixed one's calls come every 3.5 periods on average).
    run_bench policy_classes_deal bench_policy --periods 100 --period-ms 250 --initial 0 --workers 16 --policy tokenmgr --classes 3:1 --mix deal
    run_bench decide bench_decide --seconds 3
    # The cost of Sentinel once connected, and failover time as clients see it.
    run_bench decide_sentinel bench_decide --sentinel 1
    run_bench failover bench_failover --runs 5
    run_bench scaling bench_scaling --iterations 1000
    run_bench plugin bench_plugin --iterations 2000
    # Python against C (the binding's acquire+complete pairs).
    say "bench_python.py"
    /usr/bin/python3 tests/bench/bench_python.py --build "$builddir" --json "$out/python.json" ||
        { failed=1; echo null >"$out/python.json"; }
    {
        printf '{"date":"%s","command":"./dev.sh bench",' "$started"
        printf '"machine":{"nproc":%s,"cpu":"%s","redis":"%s",' \
            "$(nproc)" "${cpu//\"/}" "$redis"
        printf '"loadavg_start":"%s","loadavg_end":"%s"},' "$load" \
            "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf '"policy":%s,"policy_steady":%s,"decide":%s,"scaling":%s,' \
            "$(cat "$out/policy.json")" "$(cat "$out/policy_steady.json")" \
            "$(cat "$out/decide.json")" "$(cat "$out/scaling.json")"
        printf '"policy_long":%s,"policy_drain_long":%s,' \
            "$(cat "$out/policy_long.json")" "$(cat "$out/policy_drain_long.json")"
        printf '"policy_classes":%s,"policy_classes_deal":%s,' \
            "$(cat "$out/policy_classes.json")" "$(cat "$out/policy_classes_deal.json")"
        printf '"decide_sentinel":%s,"failover":%s,"python":%s,' \
            "$(cat "$out/decide_sentinel.json")" "$(cat "$out/failover.json")" \
            "$(cat "$out/python.json")"
        printf '"plugin":%s}\n' "$(cat "$out/plugin.json")"
    } >"$out/results.json"
    say "figures: $out/results.json"
    return $failed
}

# Each target of tests/fuzz/ for $1 seconds on a copy of its seed corpus
# (the seeds stay as committed); a crash stops the run with its input
# saved in build-fuzz/crashes/.
fuzz() {
    local secs=${1:-60} t log failed=0 targets
    case "$secs" in
    '' | *[!0-9]*)
        echo "dev.sh: fuzz takes a number of seconds, not '$secs'" >&2
        exit 64
        ;;
    esac
    install_missing "${packages[@]}" "${fuzz_packages[@]}"
    say "building the fuzz targets in build-fuzz/"
    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DTKM_FUZZ=ON \
        -DTKM_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug -DTKM_WERROR=ON >/dev/null
    cmake --build build-fuzz -j "$(nproc)" --target fuzz_all
    mkdir -p build-fuzz/crashes build-fuzz/logs
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    [ $# -gt 0 ] && shift
    targets=("$@")
    [ ${#targets[@]} -gt 0 ] ||
        read -ra targets <<<"$(sed -n 's/^set(TKM_FUZZ_TARGETS \(.*\))$/\1/p' tests/fuzz/CMakeLists.txt)"
    for t in "${targets[@]}"; do
        rm -rf "build-fuzz/corpus/$t"
        mkdir -p "build-fuzz/corpus/$t"
        cp tests/fuzz/corpus/"$t"/* "build-fuzz/corpus/$t/"
        log=build-fuzz/logs/$t.log
        say "fuzzing $t for ${secs}s"
        if "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
            -timeout=10 -close_fd_mask=1 -print_final_stats=1 \
            -artifact_prefix="build-fuzz/crashes/$t-" \
            "build-fuzz/corpus/$t" >"$log" 2>&1; then
            { grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || echo "(no DONE line)"; } | tail -1 | sed "s/^/$t: /"
        else
            failed=1
            echo "dev.sh: fuzz_$t failed (input in build-fuzz/crashes/):" >&2
            grep -v '^tokenmgr: ' "$log" | tail -40 >&2
        fi
    done
    return $failed
}

# The copy, its build and each mutant's log are in build-mutation/ (or
# $TKM_MUTATION_DIR); the developer's tree is never touched.
mutate() {
    install_missing "${packages[@]}" ninja-build python3
    exec python3 "$top/tests/mutation/mutate.py" "$@"
}

demo() {
    build
    exec bash "$top/tests/demo/demo.sh" "$top/$builddir" "$@"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
test) parse_flavour "$@"; run_tests ;;
build) parse_flavour "$@"; build ;;
demo) demo "$@" ;;
format) format "$@" ;;
bench) bench ;;
fuzz) fuzz "$@" ;;
mutate) mutate "$@" ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || exit 64
    ;;
esac
