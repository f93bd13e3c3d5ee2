#!/usr/bin/env bash
# bench/apiwrite.sh: how long an admin API write takes against the number of objects
# already stored. Builds glbdns, starts it on loopback with a one-zone policy, the admin API
# and a token, creates N pools (bench/apiwrite; with SERVICES=1 a service over each) and
# prints the median write latency at the 10th, 100th, 250th... write and the total time. A
# write returns once the snapshot it made serves, so this is the write path end to end:
# validate, persist, compile, install. STORE=etcd keeps the objects in a one-member etcd
# (built by .ci/etcd.sh) instead of the managed folder. WRITERS=10 writes with ten
# concurrent clients, as Terraform applies (its default -parallelism).
#
#   ./bench/apiwrite.sh                                 # 250 pools, the folder
#   N=10000 SERVICES=1 STORE=etcd ./bench/apiwrite.sh   # 10,000 pools and 10,000 services
#   N=10000 SERVICES=1 WRITERS=10 ./bench/apiwrite.sh   # the same, ten writers at a time
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N="${N:-250}"; SERVICES="${SERVICES:-}"; STORE="${STORE:-folder}"; WRITERS="${WRITERS:-1}"
WORK="$(mktemp -d /tmp/glb-apiwrite.XXXXXX)"
PID="" EPID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "$EPID" ] && kill "$EPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns ./bench/apiwrite)
cat >"$WORK/policy.hcl" <<'POLICY'
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
POLICY
echo "apiwrite-$$" >"$WORK/token"
store=()
if [ "$STORE" = etcd ]; then
  etcd="$(bash "$ROOT/.ci/etcd.sh" | tail -n1)"
  "$etcd" --data-dir "$WORK/etcd" --listen-client-urls http://127.0.0.1:23790 \
    --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
    --log-level warn 2>"$WORK/etcd.log" &
  EPID=$!
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:23790/health 2>/dev/null | grep -q '"true"' && break; sleep 0.1; done
  store=(-etcd-endpoints http://127.0.0.1:23790)
fi
"$WORK/glbdns" -policy "$WORK/policy.hcl" -listen 127.0.0.1:0 -admin 127.0.0.1:0 \
  -admin-token-file "$WORK/token" "${store[@]}" 2>"$WORK/log" &
PID=$!
for _ in $(seq 1 100); do grep -q 'msg="admin listening"' "$WORK/log" && break; sleep 0.1; done
addr="$(sed -n 's/.*msg="admin listening" addr=\([^ ]*\).*/\1/p' "$WORK/log" | head -n1)"
[ -n "$addr" ] || { echo "glbdns did not start:" >&2; cat "$WORK/log" >&2; exit 1; }
svc=(); [ -n "$SERVICES" ] && svc=(-services)
echo "apiwrite: $N pools${SERVICES:+ and $N services}, store $STORE, $(date -u +%FT%TZ)"
"$WORK/apiwrite" -admin "http://$addr" -token "$(cat "$WORK/token")" -n "$N" -c "$WRITERS" "${svc[@]}"
