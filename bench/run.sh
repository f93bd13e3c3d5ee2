#!/usr/bin/env bash
# bench/run.sh: build glbdns, serve bench/glb.test.hcl pinned to CPU 1 on 127.0.0.1:5399,
# and measure it beside the peer servers with the shared harness:
#
#   ROUNDS=${ROUNDS:-3} ../shared/bench/compare.sh glb=127.0.0.1:5399:mix,www,pool,pool2,geo
#
# (the harness lives in ../shared/bench relative to the repository root; BENCH_DIR
# overrides it). Every other compare.sh variable (PEERS, DURATION, SCENARIOS, OUT, ...)
# passes through. POLICY and LISTEN choose another policy and address (127/8 only).
# The server is stopped by its PID on exit; every wait is bounded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$ROOT/../shared/bench}"
POLICY="${POLICY:-$ROOT/bench/glb.test.hcl}"
LISTEN="${LISTEN:-127.0.0.1:5399}"
SCEN="${GLB_SCENARIOS:-mix,www,pool,pool2,geo}"
export ROUNDS="${ROUNDS:-3}"

case "$LISTEN" in 127.*:*) ;; *) echo "run.sh: LISTEN must be on 127.0.0.0/8" >&2; exit 2 ;; esac
[ -x "$BENCH_DIR/compare.sh" ] || { echo "run.sh: no $BENCH_DIR/compare.sh" >&2; exit 2; }
command -v dnsperf >/dev/null || { echo "run.sh: dnsperf is not installed" >&2; exit 2; }
if ss -Hlun "src $LISTEN" | grep -q .; then echo "run.sh: $LISTEN is busy" >&2; exit 1; fi

WORK="$(mktemp -d /tmp/glb-bench.XXXXXX)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/glbdns" ./cmd/glbdns)

PID=""
stop() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# Pinned from the start, so that GOMAXPROCS and the UDP worker count are sized for one CPU
# (compare.sh re-pins the threads for its unpinned rows; see its README).
taskset -c 1 "$WORK/glbdns" -listen "$LISTEN" -policy "$POLICY" -log-level warn -rrl-rate 0 >"$WORK/glbdns.log" 2>&1 &
PID=$!
echo "glbdns pid $PID on $LISTEN, log $WORK/glbdns.log"
up=""
for _ in $(seq 1 100); do # at most ~10 s
  kill -0 "$PID" 2>/dev/null || { echo "run.sh: glbdns exited:" >&2; tail -20 "$WORK/glbdns.log" >&2; exit 1; }
  if ss -Hlun "src $LISTEN" | grep -q .; then up=1; break; fi
  sleep 0.1
done
[ -n "$up" ] || { echo "run.sh: glbdns not listening on $LISTEN after 10 s" >&2; exit 1; }

uptime
"$BENCH_DIR/compare.sh" "glb=$LISTEN:$SCEN"
uptime
