# bench/pinned.sh: helpers for the scripts that measure glbdns beside gdnsd by hand
# (p99.sh, pair.sh); sourced, not executed. Both servers are pinned to CPU 1 and dnsperf
# runs on CPU 0, as in the shared harness's pinned rows. gdnsd comes from the shared
# harness (BENCH_DIR, default ../shared/bench); without it only glbdns is served.
#
# After sourcing: WORK (scratch dir), SERVERS ("glbdns", or "gdnsd glbdns"), and
#   pinned_start NAME   start NAME pinned to CPU 1 and wait (bounded) until it listens;
#                       sets PORT and SPID
#   pinned_halt NAME    stop it again
# Every server still running is stopped on exit. GLBDNS_ARGS are more flags for glbdns;
# by default "-rrl-rate 0": dnsperf floods from one address, which rate limiting exists to
# hold back, and the peers run without it. GLBDNS_ARGS="-rrl-rate 16777215" measures what
# rate limiting costs a reply that it lets through.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$ROOT/../shared/bench}"
GLB_PORT="${GLB_PORT:-5398}"; GDNSD_PORT="${GDNSD_PORT:-5397}"; GLBDNS_ARGS="${GLBDNS_ARGS--rrl-rate 0}"
command -v dnsperf >/dev/null || { echo "$(basename "$0"): dnsperf is not installed" >&2; exit 2; }

WORK="$(mktemp -d /tmp/glb-pinned.XXXXXX)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/glbdns" ./cmd/glbdns)
GLB_PID=""
pinned_stop_all() {
  [ -n "$GLB_PID" ] && kill -TERM "$GLB_PID" 2>/dev/null || true
  [ -x "$BENCH_DIR/gdnsd.sh" ] && "$BENCH_DIR/gdnsd.sh" stop >/dev/null 2>&1 || true
}
trap pinned_stop_all EXIT
trap 'exit 130' INT TERM

SERVERS="glbdns"
if [ -x "$BENCH_DIR/gdnsd.sh" ] && "$BENCH_DIR/gdnsd.sh" install >/dev/null 2>&1; then
  SERVERS="gdnsd glbdns"
fi

pinned_start() { # not in a subshell: PORT and SPID must stick
  case "$1" in
    glbdns)
      PORT=$GLB_PORT
      taskset -c 1 "$WORK/glbdns" -listen "127.0.0.1:$PORT" -policy "$ROOT/bench/glb.test.hcl" \
        -log-level warn -no-watch $GLBDNS_ARGS >"$WORK/glbdns.log" 2>&1 &
      GLB_PID=$!; SPID=$GLB_PID ;;
    gdnsd)
      PORT=$GDNSD_PORT
      "$BENCH_DIR/gdnsd.sh" start "$PORT" >/dev/null 2>&1
      SPID="$("$BENCH_DIR/gdnsd.sh" pid)"
      taskset -a -pc 1 "$SPID" >/dev/null ;;
  esac
  for _ in $(seq 1 50); do ss -Hlun "sport = :$PORT" | grep -q . && return 0; sleep 0.1; done
  echo "$1 is not listening on 127.0.0.1:$PORT after 5 s" >&2; return 1
}
pinned_halt() {
  case "$1" in
    glbdns) kill -TERM "$GLB_PID" 2>/dev/null || true; wait "$GLB_PID" 2>/dev/null || true; GLB_PID="" ;;
    gdnsd) "$BENCH_DIR/gdnsd.sh" stop >/dev/null 2>&1 || true ;;
  esac
}

# ecs_args SCEN: the dnsperf option that sends ECS 198.51.100.0/24 (RFC 7871) with the
# geo scenario, as compare.sh does (ECS_SUBNET there); nothing for the others.
ecs_args() {
  [ "$1" = geo ] && echo "-E 8:00011800c63364" || true
}
