#!/usr/bin/env bash
# Starts a glbdns cluster on loopback: a real 3-member etcd cluster (built from the Go module
# proxy by .ci/etcd.sh, cached), three glbdns nodes serving examples/policy and sharing their
# managed objects and drains through etcd, two healthd reporters that register in etcd (no
# -health flag on any node), and the four demo backends. Ctrl-C stops everything. Called by
# `make run-cluster`.
#
#   node   DNS                admin API
#   n1     127.0.0.21:5353    http://127.0.0.21:8053
#   n2     127.0.0.22:5353    http://127.0.0.22:8053
#   n3     127.0.0.23:5353    http://127.0.0.23:8053
#   healthd h1 http://127.0.0.31:8054, h2 http://127.0.0.32:8054
#   etcd   http://127.0.0.41:2379, .42, .43 (peers on port 2380)
#
# The run folder ($GLBDNS_RUN_DIR, default /tmp/glbdns-cluster) holds the logs, pid files,
# etcd's data (emptied at every start), each node's policy cache, and the admin API's token
# (admin-token), which every node accepts.
set -euo pipefail
bin=${1:-bin}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
run=${GLBDNS_RUN_DIR:-/tmp/glbdns-cluster}
mkdir -p "$run"
token_file=$run/admin-token
if [ ! -s "$token_file" ]; then
  (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$token_file")
fi
etcd=$(bash "$root/.ci/etcd.sh" | tail -n1)
CGO_ENABLED=0 go build -o "$bin/demo-backend" "$here/backend"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
started() { # started NAME PID: keep the pid in the run folder and in the cleanup list
  echo "$2" >"$run/$1.pid"
  pids+=("$2")
}

initial=m1=http://127.0.0.41:2380,m2=http://127.0.0.42:2380,m3=http://127.0.0.43:2380
endpoints=http://127.0.0.41:2379,http://127.0.0.42:2379,http://127.0.0.43:2379
for i in 1 2 3; do
  ip=127.0.0.4$i
  rm -rf "$run/etcd-m$i"
  "$etcd" --name "m$i" --data-dir "$run/etcd-m$i" \
    --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
    --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token glbdns-run \
    --log-level warn 2>>"$run/etcd-m$i.log" &
  started "etcd-m$i" $!
done
for _ in $(seq 1 100); do # etcd elects a leader in about a second
  curl -fsS http://127.0.0.41:2379/health 2>/dev/null | grep -q '"true"' && break
  sleep 0.1
done

for b in fra-1=127.0.0.11:8080 ams-1=127.0.0.12:8080 iad-1=127.0.0.13:8080 iad-v6=[::1]:8080; do
  name=${b%%=*} addr=${b#*=}
  "$bin/demo-backend" -name "$name" -listen "$addr" 2>>"$run/backends.log" &
  started "backend-$name" $!
done

for i in 1 2; do
  "$bin/healthd" -policy "$here/policy" -etcd-endpoints "$endpoints" -id "h$i" \
    -listen "127.0.0.3$i:8054" -policy-cache "$run/healthd-h$i.cache" 2>>"$run/healthd-h$i.log" &
  started "healthd-h$i" $!
done

for i in 1 2 3; do
  ip=127.0.0.2$i
  "$bin/glbdns" -listen "$ip:5353" -policy "$here/policy" -etcd-endpoints "$endpoints" \
    -node-id "n$i" -admin "$ip:8053" -admin-token-file "$token_file" -admin-public-status -admin-public-metrics \
    -policy-cache "$run/glbdns-n$i.cache" 2>>"$run/glbdns-n$i.log" &
  started "glbdns-n$i" $!
done

cat <<MSG
A glbdns cluster is starting on loopback (logs and pid files in $run):
  three nodes answering DNS on 127.0.0.21:5353, 127.0.0.22:5353 and 127.0.0.23:5353,
  a 3-member etcd cluster on $endpoints,
  two healthd reporters (h1, h2) found by every node through etcd.
  dig @127.0.0.21 -p 5353 www.glb.example.com A +short
  dig @127.0.0.23 -p 5353 www.glb.example.com A +short
  $bin/glbctl status -admin http://127.0.0.22:8053 -admin-token-file $token_file   # the nodes, their policy, their reporters
A pool made through one node is served by all three:
  curl -s -H "Authorization: Bearer \$(cat $token_file)" http://127.0.0.21:8053/v1/pools -d '{"name":"web-new","members":[{"name":"iad-2","address":"127.0.0.13"}],"checks":[{"name":"http","type":"http","port":8080,"path":"/healthz","interval":"1s","timeout":"500ms"}]}'
  curl -s -H "Authorization: Bearer \$(cat $token_file)" http://127.0.0.21:8053/v1/services -d '{"name":"new.glb.example.com","pools":["web-new"]}'
  dig @127.0.0.23 -p 5353 new.glb.example.com A +short
Stop the etcd cluster and the nodes keep answering (writes get 503):
  kill \$(cat $run/etcd-m1.pid) \$(cat $run/etcd-m2.pid) \$(cat $run/etcd-m3.pid)
Ctrl-C stops everything.
MSG
wait "${pids[-1]}"
