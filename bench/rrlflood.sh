#!/usr/bin/env bash
# bench/rrlflood.sh: the amplification flood, before and after rate limiting. Builds
# glbdns, starts it twice on loopback with a zone whose big.amp.test has 60 addresses (an
# answer of about 1 KB): once with its default rate limiting (100 replies a second, slip
# 2), once with -rrl-rate 0. bench/rrlflood sends each N identical queries (default
# 20,000) in one second from 127.0.0.50, then the rate-limited one the same flood with a
# valid server cookie from 127.0.2.1, and prints full answers, slipped replies and bytes
# out over bytes in. Extra arguments go to both glbdns (-rrl-rate 20, -rrl-slip 0, ...).
#
#   ./bench/rrlflood.sh
#   N=100000 D=5s ./bench/rrlflood.sh -rrl-slip 1
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N="${N:-20000}"; D="${D:-1s}"
WORK="$(mktemp -d /tmp/glb-rrlflood.XXXXXX)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns ./bench/rrlflood)
values="$(for i in $(seq 1 60); do printf '"192.0.2.%d", ' "$i"; done)"
cat >"$WORK/policy.hcl" <<POLICY
zone "amp.test" {
  nameservers = ["ns1.amp.test"]
  record "big" {
    type   = "A"
    values = [${values%, }]
  }
}
POLICY
serve() { # serve NAME FLAGS...: starts glbdns, sets ADDR
  local name=$1; shift
  "$WORK/glbdns" -policy "$WORK/policy.hcl" -listen 127.0.0.1:0 "$@" 2>"$WORK/$name.log" &
  PIDS+=($!)
  ADDR=""
  for _ in $(seq 1 100); do
    ADDR="$(sed -n 's/.*msg=serving addr=\([^ ]*\).*/\1/p' "$WORK/$name.log" | head -n1)"
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "glbdns ($name) did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1
}
serve limited "$@"; limited=$ADDR
serve open -rrl-rate 0 "$@"; open=$ADDR
echo "rrlflood: $N queries of big.amp.test A in $D, $(date -u +%FT%TZ)"
"$WORK/rrlflood" -addr "$open" -n "$N" -d "$D" -label "rate limiting off"
"$WORK/rrlflood" -addr "$limited" -n "$N" -d "$D" -label "rate limiting on"
"$WORK/rrlflood" -addr "$limited" -n "$N" -d "$D" -from 127.0.2.1 -cookie -label "on, with a cookie"
