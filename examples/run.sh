#!/usr/bin/env bash
# Starts the demo: four HTTP backends on loopback, healthd checking them, and glbdns serving
# examples/policy in the foreground, with its admin API on. Ctrl-C stops everything. Called
# by `make run`. The run folder ($GLBDNS_RUN_DIR, default /tmp/glbdns-run) holds the logs,
# the backends' pid files, the admin API's token (admin-token) and the managed folder
# (managed/: the objects made through the API, which glbdns and healthd both read; emptied
# at every start, so the demo starts from the example policy alone).
set -euo pipefail
bin=${1:-bin} listen=${2:-127.0.0.1:5353} health=${3:-127.0.0.1:8054} admin=${4:-127.0.0.1:8053}
here=$(cd "$(dirname "$0")" && pwd)
run=${GLBDNS_RUN_DIR:-/tmp/glbdns-run}
mkdir -p "$run"
managed=$run/managed
rm -rf "$managed"
token_file=$run/admin-token
if [ ! -s "$token_file" ]; then
  (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$token_file")
fi

CGO_ENABLED=0 go build -o "$bin/demo-backend" "$here/backend"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for b in fra-1=127.0.0.11:8080 ams-1=127.0.0.12:8080 iad-1=127.0.0.13:8080 iad-v6=[::1]:8080; do
  name=${b%%=*} addr=${b#*=}
  "$bin/demo-backend" -name "$name" -listen "$addr" 2>>"$run/backends.log" &
  echo $! >"$run/backend-$name.pid"
  pids+=($!)
done

health_flags=()
if [ -x "$bin/healthd" ]; then
  "$bin/healthd" -policy "$here/policy" -managed-dir "$managed" -listen "$health" 2>>"$run/healthd.log" &
  pids+=($!)
  health_flags=(-health "http://$health")
fi

host=${listen%:*} port=${listen##*:}
cat <<MSG
glbdns is starting on $listen (UDP and TCP), serving $here/policy.
  dig @$host -p $port www.glb.example.com A        # weighted: fra-1 3x, ams-1 1x, iad-1 1x
  dig @$host -p $port rr.glb.example.com A         # round robin, 2 answers
  dig @$host -p $port sticky.glb.example.com A +subnet=203.0.113.0/24   # client-subnet hash
  dig @$host -p $port lc.glb.example.com A +short    # least connections (curl 'http://127.0.0.11:8080/hold?seconds=30' & loads fra-1)
  dig @$host -p $port geo.glb.example.com A +short +subnet=81.2.69.142/32     # geo: a GB client gets web-eu
  dig @$host -p $port geo.glb.example.com A +short +subnet=216.160.83.56/32   # geo: a US client gets web-us
  dig @$host -p $port static.glb.example.com A     # CNAME to a serverless endpoint
MSG
if [ ${#health_flags[@]} -gt 0 ]; then
cat <<MSG
healthd is on http://$health/v1/health (log: $run/healthd.log). Stop a backend and watch it leave:
  kill \$(cat $run/backend-fra-1.pid)
  curl -s http://$health/v1/health | head
MSG
fi
cat <<MSG
Status page: http://$admin/   (metrics: http://$admin/metrics, state: http://$admin/v1/state)
  $bin/glbctl status -admin http://$admin -admin-token-file $token_file
Edit $here/policy/*.hcl and glbdns reloads it; a broken edit is refused and logged.
The admin API's token is in $token_file; make a pool and a service with it:
  curl -s -H "Authorization: Bearer \$(cat $token_file)" http://$admin/v1/pools -d '{"name":"web-new","members":[{"name":"iad-2","address":"127.0.0.13"}],"checks":[{"name":"http","type":"http","port":8080,"path":"/healthz","interval":"1s","timeout":"500ms"}]}'
  curl -s -H "Authorization: Bearer \$(cat $token_file)" http://$admin/v1/services -d '{"name":"new.glb.example.com","pools":["web-new"]}'
  dig @$host -p $port new.glb.example.com A +short
MSG
echo "Ctrl-C stops everything."
"$bin/glbdns" -listen "$listen" -policy "$here/policy" -managed-dir "$managed" -admin "$admin" \
  -admin-token-file "$token_file" -admin-public-status -admin-public-metrics "${health_flags[@]}" &
pids+=($!)
wait "${pids[-1]}"
