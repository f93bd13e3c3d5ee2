#!/usr/bin/env bash
# bench/scale.sh: glbdns on a large generated policy (bench/genpolicy: NAMES static names,
# SERVICES services). Reports the time from start to listening (the policy load), the
# RSS, and dnsperf qps over the generated query mix; /usr/bin/time -v gives max RSS and
# CPU. Server pinned to CPU 1, dnsperf to CPU 0; every wait is bounded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NAMES="${NAMES:-1000000}"; SERVICES="${SERVICES:-100000}"
OUTDIR="${OUTDIR:-/tmp/big}"; LISTEN="${LISTEN:-127.0.0.1:5397}"; DURATION="${DURATION:-10}"
case "$LISTEN" in 127.*:*) ;; *) echo "scale.sh: LISTEN must be on 127.0.0.0/8" >&2; exit 2 ;; esac
WORK="$(mktemp -d /tmp/glb-scale.XXXXXX)"
cd "$ROOT"
CGO_ENABLED=0 go build -trimpath -o "$WORK/glbdns" ./cmd/glbdns
go run ./bench/genpolicy -names "$NAMES" -services "$SERVICES" -out "$OUTDIR"
if ss -Hlun "src $LISTEN" | grep -q .; then echo "scale.sh: $LISTEN busy" >&2; exit 1; fi

start=$(date +%s.%N)
taskset -c 1 /usr/bin/time -v "$WORK/glbdns" -listen "$LISTEN" -policy "$OUTDIR/glb.hcl" -log-level warn -rrl-rate 0 \
  >"$WORK/glbdns.log" 2>"$WORK/time.txt" &
TPID=$!
PID=""
stop() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$TPID" 2>/dev/null && kill -KILL "$TPID" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 3000); do # at most ~300 s
  kill -0 "$TPID" 2>/dev/null || { echo "scale.sh: glbdns exited" >&2; cat "$WORK/time.txt" >&2; exit 1; }
  if ss -Hlun "src $LISTEN" | grep -q .; then break; fi
  sleep 0.1
done
end=$(date +%s.%N)
PID="$(ss -Hlunp "src $LISTEN" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
[ -n "$PID" ] || { echo "scale.sh: glbdns not listening after 300 s" >&2; exit 1; }
echo "load (start to listening): $(echo "$end - $start" | bc) s"
grep -E 'VmRSS|VmHWM' "/proc/$PID/status"
taskset -c 0 dnsperf -s "${LISTEN%:*}" -p "${LISTEN##*:}" -d "$OUTDIR/queries.txt" -l "$DURATION" -c 2 -q 100 \
  | grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency'
grep -E 'VmRSS|VmHWM' "/proc/$PID/status"
stop; PID=""
grep -E 'Maximum resident|Elapsed|User time|System time' "$WORK/time.txt"
