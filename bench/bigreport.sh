#!/usr/bin/env bash
# bench/bigreport.sh: what a hostile health source costs glbdns. Builds glbdns and
# bench/bigreport, starts glbdns on a one-service policy subscribed to a source whose
# every report is 1 GB (SIZE), waits WAIT seconds (15), and prints glbdns's peak and current RSS
# and how many reports it refused; then the same glbdns without the source, for the idle
# figure. Linux (/proc).
#
#   ./bench/bigreport.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SIZE="${SIZE:-1073741824}"; WAIT="${WAIT:-15}"
WORK="$(mktemp -d /tmp/glb-bigreport.XXXXXX)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns ./bench/bigreport)
cat >"$WORK/policy.hcl" <<'POLICY'
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  member "m" {
    address = "192.0.2.1"
  }
}
service "www.glb.test" {
  pools = ["web"]
}
POLICY
"$WORK/bigreport" -listen 127.0.0.1:18777 -size "$SIZE" & PIDS+=($!)
sleep 0.5
rss() { grep -E 'VmHWM|VmRSS' "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo; }
"$WORK/glbdns" -policy "$WORK/policy.hcl" -listen 127.0.0.1:0 -health http://127.0.0.1:18777 2>"$WORK/log" & G=$!; PIDS+=($G)
sleep "$WAIT"
echo "with a $SIZE-byte report source, after ${WAIT}s: $(rss "$G")refused reports: $(grep -c 'health report refused' "$WORK/log" || true)"
kill "$G"
"$WORK/glbdns" -policy "$WORK/policy.hcl" -listen 127.0.0.1:0 2>"$WORK/log2" & G=$!; PIDS+=($G)
sleep 5
echo "idle, no health source, after 5s: $(rss "$G")"
