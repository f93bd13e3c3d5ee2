#!/usr/bin/env bash
# bench/p99.sh: latency at 10k qps in microseconds, glbdns beside gdnsd, pinned as in
# compare.sh (server on CPU 1, dnsperf on CPU 0). compare.sh prints p99 rounded to 0.1 ms,
# which cannot tell 0.14 ms from 0.16 ms; this prints p50/p90/p99/p99.9/max in µs from
# dnsperf's per-query latencies (dnsperf -v), for the same 4-second runs.
#
#   ./bench/p99.sh                   # scenarios pool mix geo, 3 runs each, alternating
#   RUNS=5 SCENARIOS="pool" ./bench/p99.sh
#
# gdnsd comes from the shared harness (BENCH_DIR, default ../shared/bench); without it
# only glbdns is measured. Every wait is bounded; both servers are stopped on exit.
set -euo pipefail
RUNS="${RUNS:-3}"; SCENARIOS="${SCENARIOS:-pool mix geo}"; RATE="${RATE:-10000}"
. "$(dirname "$0")/pinned.sh"

for scen in $SCENARIOS; do
  for run in $(seq 1 "$RUNS"); do
    for name in $SERVERS; do
      pinned_start "$name"
      sleep 1 # let the server settle after start (both alike)
      timeout 30 taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$BENCH_DIR/queries/$scen.txt" \
        -l 4 -c 2 -q 100 -Q "$RATE" $(ecs_args "$scen") -v >"$WORK/lat.out" 2>&1 || true
      awk '$1==">" && $NF ~ /^[0-9.]+$/ {print $NF*1000000}' "$WORK/lat.out" | sort -g |
        awk -v n="$name" -v s="$scen" -v r="$run" '{a[NR]=$1} END {
          if (NR == 0) { printf "%-7s %-5s run %d: no latencies\n", n, s, r; exit }
          printf "%-7s %-5s run %d: n=%d p50=%dus p90=%dus p99=%dus p99.9=%dus max=%dus\n",
            n, s, r, NR, a[int(NR*.5)], a[int(NR*.9)], a[int(NR*.99)], a[int(NR*.999)], a[NR] }'
      pinned_halt "$name"
    done
  done
done
