#!/usr/bin/env bash
# Before/after performance comparison of two checkouts of the Engine repo.
#
#   bench/compare-builds.sh BEFORE_DIR AFTER_DIR   (e.g. a `git worktree add --detach /tmp/before REV` and this checkout)
#
# Each DIR is a checkout with bench/Engine.Benchmarks. If its Release build is missing it is built first (never
# during timing). Every benchmark is then run as before, after, before, after, ... (PAIRS pairs, default 5), each run a
# fresh process of the already-built dll. All figures are throughputs: HIGHER IS BETTER, and after/before > 1 means the
# after build is faster.
#
#   pf1 1 thread   pagefault harness, page_fault1, engine only, 1 thread, poison on        pages/s
#   pf1 2 threads  pagefault harness, page_fault1, engine only, 2 threads in one process   pages/s
#   gup pin 512    BDN GupBenchmarks.PinFast(PagesPerCall: 512), in-process, median         pages/s (1e9 / ns per page)
#   sched 3x33     BDN SchedulerThroughputBenchmarks.Builtin, in-process, median            iterations/s (1e9 / ns per it.)
#
# Environment knobs: PAIRS (default 5), PF_DURATION (default 10 s), PF_WARMUP (default 2 s), BDN_ITER (default 15),
# BDN_WARMUP (default 5), QUIET_PCT (default 5) and QUIET_WAIT (default 120 s): before each pair, wait up to QUIET_WAIT s
# for a 3 s window in which the machine is less than QUIET_PCT % busy (0 disables the wait), LOG_DIR (default a new /tmp/perf-compare.XXXX; every run's full output is kept there).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BEFORE_DIR AFTER_DIR" >&2
    exit 2
fi

BEFORE_DIR=$(cd "$1" && pwd)
AFTER_DIR=$(cd "$2" && pwd)
PAIRS=${PAIRS:-5}
PF_DURATION=${PF_DURATION:-10}
PF_WARMUP=${PF_WARMUP:-2}
BDN_ITER=${BDN_ITER:-15}
BDN_WARMUP=${BDN_WARMUP:-5}
QUIET_PCT=${QUIET_PCT:-5}
QUIET_WAIT=${QUIET_WAIT:-120}
LOG_DIR=${LOG_DIR:-$(mktemp -d /tmp/perf-compare.XXXX)}
mkdir -p "$LOG_DIR"
REL=bench/Engine.Benchmarks/bin/Release/net10.0/Engine.Benchmarks.dll

for cmd in dotnet jq awk /usr/bin/time; do
    command -v "$cmd" >/dev/null || { echo "$cmd not found" >&2; exit 1; }
done

# --- build (only if missing), before any timing --------------------------------------------------------------------
for dir in "$BEFORE_DIR" "$AFTER_DIR"; do
    if [[ ! -f "$dir/$REL" ]]; then
        echo "building $dir (Release) ..." >&2
        dotnet build "$dir/bench/Engine.Benchmarks" -c Release -nologo -v q >"$LOG_DIR/build-$(basename "$dir").log" 2>&1 \
            || { echo "build of $dir failed, see $LOG_DIR" >&2; exit 1; }
    fi
done

BEFORE_DLL="$BEFORE_DIR/$REL"
AFTER_DLL="$AFTER_DIR/$REL"
# Run from a scratch directory so that nothing (BenchmarkDotNet.Artifacts) lands in either checkout.
WORK=$(mktemp -d /tmp/perf-compare-cwd.XXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

rev() { git -C "$1" rev-parse --short HEAD 2>/dev/null || echo '?'; }
dirty() { [[ -n "$(git -C "$1" status --porcelain --untracked-files=no -- src bench 2>/dev/null)" ]] && echo ' (+uncommitted changes in src/bench)' || true; }
echo "before: $BEFORE_DIR @ $(rev "$BEFORE_DIR")$(dirty "$BEFORE_DIR")  dll $(date -r "$BEFORE_DLL" '+%F %T')"
echo "after:  $AFTER_DIR @ $(rev "$AFTER_DIR")$(dirty "$AFTER_DIR")  dll $(date -r "$AFTER_DLL" '+%F %T')"
echo "pairs: $PAIRS (order before, after, before, after, ...); logs: $LOG_DIR"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- one run of one benchmark: prints its figure (a throughput) on stdout -------------------------------------------
# run_one BENCH DLL LOGFILE
# Also writes LOGFILE.other: the share of the machine's CPU (all cores) that OTHER processes used during the run,
# in percent ((busy jiffies of the whole machine - this run's own user+sys) / (wall x cores)). Anything above a few
# percent means the figure was taken on a busy machine.
busy_seconds() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat; }
run_one() {
    local bench=$1 dll=$2 log=$3 art figure busy0 busy1
    busy0=$(busy_seconds)
    case $bench in
        pf1-1|pf1-2)
            local only=single label='1 thread'
            if [[ $bench == pf1-2 ]]; then only=shared label='2 threads, one process'; fi
            env -u ENGINE_SYSTEMATIC /usr/bin/time -f '%U %S %e' -o "$log.time" dotnet "$dll" pagefault --test pf1 --skip-native --skip-baseline \
                --only "$only" --poison on --duration "$PF_DURATION" --warmup "$PF_WARMUP" >"$log" 2>&1
            figure=$(awk -v want="engine page_fault1 $label, poison on:" \
                'index($0, want) == 1 { v = $(NF-1); gsub(",", "", v); print v }' "$log")
            ;;
        gup512|sched)
            art="$log.artifacts"
            local filter='*GupBenchmarks.PinFast(PagesPerCall: 512)*' hook=0
            if [[ $bench == sched ]]; then filter='*SchedulerThroughputBenchmarks.Builtin*' hook=1; fi
            # In-process toolchain: BenchmarkDotNet's default toolchain would generate and BUILD a project (and
            # with it src/) before measuring; in-process measures the dll as built. The class configs' env-var
            # mutators cannot act in-process, so ENGINE_SYSTEMATIC is set here to what they would set.
            ENGINE_SYSTEMATIC=$hook /usr/bin/time -f '%U %S %e' -o "$log.time" dotnet "$dll" --filter "$filter" --job short \
                --warmupCount "$BDN_WARMUP" --iterationCount "$BDN_ITER" --inProcess \
                --artifacts "$art" --exporters json >"$log" 2>&1
            # Median ns per operation (per page for GUP, per test iteration for the scheduler) -> operations/s.
            figure=$(jq -r '[.Benchmarks[] | select(.FullName | test("PinFast|Builtin"))
                             | select(.Parameters == "" or .Parameters == "PagesPerCall=512")][0].Statistics.Median
                            | if . == null then "" else 1e9 / . end' "$art"/results/*-report-full-compressed.json 2>/dev/null || true)
            ;;
    esac
    busy1=$(busy_seconds)
    read -r u s e <"$log.time"
    awk -v b0="$busy0" -v b1="$busy1" -v u="$u" -v s="$s" -v e="$e" -v n="$(nproc)" \
        'BEGIN { o = (b1 - b0 - u - s) / (e * n) * 100; if (o < 0) o = 0; printf "%.0f\n", o }' >"$log.other"
    if [[ -z $figure ]]; then
        echo "no figure parsed from $log" >&2
        return 1
    fi
    printf '%.0f\n' "$figure"
}

# Waits (at most QUIET_WAIT s) until the machine is quiet: less than QUIET_PCT % of all cores busy over 3 s.
wait_quiet() {
    local start=$SECONDS b0 b1 pct
    [[ $QUIET_WAIT -gt 0 ]] || return 0
    while true; do
        b0=$(busy_seconds); sleep 3; b1=$(busy_seconds)
        pct=$(awk -v a="$b0" -v b="$b1" -v n="$(nproc)" 'BEGIN { printf "%.0f", (b - a) / (3 * n) * 100 }')
        if (( pct < QUIET_PCT )); then return 0; fi
        if (( SECONDS - start >= QUIET_WAIT )); then
            echo "  machine still ${pct}% busy after ${QUIET_WAIT}s of waiting; running anyway" >&2
            return 0
        fi
    done
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A NAME=([pf1-1]='pf1 engine, 1 thread' [pf1-2]='pf1 engine, 2 threads' [gup512]='GUP-fast pin+unpin, 512 pages/call' [sched]='scheduler 3x33 builtin, par 1')
declare -A UNIT=([pf1-1]='pages/s' [pf1-2]='pages/s' [gup512]='pages/s' [sched]='iterations/s')
ROWS=()
for bench in pf1-1 pf1-2 gup512 sched; do
    befores=() afters=() ratios=() others=()
    for ((p = 1; p <= PAIRS; p++)); do
        wait_quiet
        b=$(run_one "$bench" "$BEFORE_DLL" "$LOG_DIR/$bench.before.$p.log")
        a=$(run_one "$bench" "$AFTER_DLL" "$LOG_DIR/$bench.after.$p.log")
        befores+=("$b") afters+=("$a")
        others+=("$(cat "$LOG_DIR/$bench.before.$p.log.other")" "$(cat "$LOG_DIR/$bench.after.$p.log.other")")
        ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')")
        echo "  $bench pair $p: before $b, after $a, after/before ${ratios[-1]}; other load ${others[-2]}% / ${others[-1]}%" >&2
    done
    mb=$(printf '%s\n' "${befores[@]}" | median)
    ma=$(printf '%s\n' "${afters[@]}" | median)
    mr=$(printf '%s\n' "${ratios[@]}" | median)
    lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)
    hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)
    maxother=$(printf '%s\n' "${others[@]}" | sort -g | tail -1)
    noisy=0
    for ((i = 0; i < ${#others[@]}; i += 2)); do
        if (( others[i] > 10 || others[i + 1] > 10 )); then noisy=$((noisy + 1)); fi
    done
    ROWS+=("$(printf '| %s | %s | %.0f | %.0f | %.3f | %.3f | %s–%s | %s%%, %s/%s |' "${NAME[$bench]}" "${UNIT[$bench]}" "$mb" "$ma" \
        "$(awk -v a="$ma" -v b="$mb" 'BEGIN { print a / b }')" "$mr" "$lo" "$hi" "$maxother" "$noisy" "$PAIRS")")
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "All figures are throughputs (higher is better); after/before > 1 = after is faster. Medians of $PAIRS runs each."
echo
echo "Last column: the most CPU that other processes took during any one run of that row (% of all cores); above a"
echo "few percent the machine was busy and the row is not to be trusted; then how many pairs had a run above 10%."
echo
echo "| benchmark | unit | before (median) | after (median) | after/before (of medians) | median pair ratio | pair ratio min–max | max other load, noisy pairs |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
