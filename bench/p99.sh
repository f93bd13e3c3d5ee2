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
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$ROOT/../shared/bench}"
RUNS="${RUNS:-3}"; SCENARIOS="${SCENARIOS:-pool mix geo}"; RATE="${RATE:-10000}"
GLB_PORT=5398; GDNSD_PORT=5397
command -v dnsperf >/dev/null || { echo "p99.sh: dnsperf is not installed" >&2; exit 2; }

WORK="$(mktemp -d /tmp/glb-p99.XXXXXX)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/glbdns" ./cmd/glbdns)
PID=""
stop() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null || true
  [ -x "$BENCH_DIR/gdnsd.sh" ] && "$BENCH_DIR/gdnsd.sh" stop >/dev/null 2>&1 || true
}
trap stop EXIT

servers="glbdns"
if [ -x "$BENCH_DIR/gdnsd.sh" ] && "$BENCH_DIR/gdnsd.sh" install >/dev/null 2>&1; then
  servers="gdnsd glbdns"
fi

start() { # start NAME: serve on PORT, pinned to CPU 1 (not in a subshell: PID must stick)
  case "$1" in
    glbdns)
      PORT=$GLB_PORT
      taskset -c 1 "$WORK/glbdns" -listen "127.0.0.1:$PORT" -policy "$ROOT/bench/glb.test.hcl" \
        -log-level warn -no-watch >"$WORK/glbdns.log" 2>&1 &
      PID=$! ;;
    gdnsd)
      PORT=$GDNSD_PORT
      "$BENCH_DIR/gdnsd.sh" start "$PORT" >/dev/null 2>&1
      taskset -a -pc 1 "$("$BENCH_DIR/gdnsd.sh" pid)" >/dev/null ;;
  esac
}
halt() {
  case "$1" in
    glbdns) kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID="" ;;
    gdnsd) "$BENCH_DIR/gdnsd.sh" stop >/dev/null 2>&1 || true ;;
  esac
}

for scen in $SCENARIOS; do
  for run in $(seq 1 "$RUNS"); do
    for name in $servers; do
      start "$name"
      for _ in $(seq 1 50); do ss -Hlun "sport = :$PORT" | grep -q . && break; sleep 0.1; done
      sleep 1 # let the server settle after start (both alike)
      timeout 30 taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$BENCH_DIR/queries/$scen.txt" \
        -l 4 -c 2 -q 100 -Q "$RATE" -v >"$WORK/lat.out" 2>&1 || true
      awk '$1==">" && $NF ~ /^[0-9.]+$/ {print $NF*1000000}' "$WORK/lat.out" | sort -g |
        awk -v n="$name" -v s="$scen" -v r="$run" '{a[NR]=$1} END {
          if (NR == 0) { printf "%-7s %-5s run %d: no latencies\n", n, s, r; exit }
          printf "%-7s %-5s run %d: n=%d p50=%dus p90=%dus p99=%dus p99.9=%dus max=%dus\n",
            n, s, r, NR, a[int(NR*.5)], a[int(NR*.9)], a[int(NR*.99)], a[int(NR*.999)], a[NR] }'
      halt "$name"
    done
  done
done
