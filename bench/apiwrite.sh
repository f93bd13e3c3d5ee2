#!/usr/bin/env bash
# bench/apiwrite.sh: how long an admin API write takes against the number of objects
# already stored. Builds glbdns, starts it on loopback with a one-zone policy, the admin API
# and a token, creates N pools (bench/apiwrite) and prints the median write latency at the
# 10th, 100th and 250th pool. A write returns once the snapshot it made serves, so this is
# the write path end to end: validate, persist, compile, install.
#
#   ./bench/apiwrite.sh            # 250 pools
#   N=500 ./bench/apiwrite.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N="${N:-250}"
WORK="$(mktemp -d /tmp/glb-apiwrite.XXXXXX)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns ./bench/apiwrite)
cat >"$WORK/policy.hcl" <<'POLICY'
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
POLICY
echo "apiwrite-$$" >"$WORK/token"
"$WORK/glbdns" -policy "$WORK/policy.hcl" -listen 127.0.0.1:0 -admin 127.0.0.1:0 \
  -admin-token-file "$WORK/token" -no-watch 2>"$WORK/log" &
PID=$!
for _ in $(seq 1 100); do grep -q 'msg="admin listening"' "$WORK/log" && break; sleep 0.1; done
addr="$(sed -n 's/.*msg="admin listening" addr=\([^ ]*\).*/\1/p' "$WORK/log" | head -n1)"
[ -n "$addr" ] || { echo "glbdns did not start:" >&2; cat "$WORK/log" >&2; exit 1; }
"$WORK/apiwrite" -admin "http://$addr" -token "$(cat "$WORK/token")" -n "$N"
