#!/usr/bin/env bash
# bench/tcpflood.sh: the TCP exhaustion load test. Builds glbdns, starts it on loopback
# with a one-service policy, and runs bench/tcpflood: 1,000 keep-alive connections and 200
# qps from 127.0.0.50, and 100 TCP queries each from 127.0.0.60 (the same /24) and
# 127.0.1.1 (another network), counted. Extra arguments go to glbdns (for instance
# -tcp-max-conns-per-prefix 1000 to see the global bound alone).
#
#   ./bench/tcpflood.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/glb-tcpflood.XXXXXX)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns ./bench/tcpflood)
cat >"$WORK/policy.hcl" <<'POLICY'
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  member "a" {
    address = "192.0.2.10"
  }
}
service "www.glb.test" {
  pools = ["web"]
}
POLICY
"$WORK/glbdns" -policy "$WORK/policy.hcl" -listen 127.0.0.1:0 "$@" 2>"$WORK/log" &
PID=$!
for _ in $(seq 1 100); do grep -q 'msg=serving' "$WORK/log" && break; sleep 0.1; done
addr="$(sed -n 's/.*msg=serving addr=\([^ ]*\).*/\1/p' "$WORK/log" | head -n1)"
[ -n "$addr" ] || { echo "glbdns did not start:" >&2; cat "$WORK/log" >&2; exit 1; }
"$WORK/tcpflood" -addr "$addr" -name www.glb.test
