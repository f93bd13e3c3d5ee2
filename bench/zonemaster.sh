#!/usr/bin/env bash
# bench/zonemaster.sh: Zonemaster (Debian's zonemaster-cli) on a signed glbdns zone,
# undelegated, with the DS from the zone's key as the parent would hold it. glbdns serves
# glb.test (bench/signed.hcl) on 127.0.0.2:53 and 127.0.0.3:53 (port 53: run as root), with a combined
# signing key made for the run, a static name and a weighted service. Loopback addresses
# give the ADDRESS module's two errors and PTR warnings; every other module's messages are
# what the check is for. Prints Zonemaster's report at INFO level, by module.
#
#   sudo ./bench/zonemaster.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
command -v zonemaster-cli >/dev/null || { echo "install Debian's zonemaster-cli" >&2; exit 2; }
WORK="$(mktemp -d /tmp/glb-zonemaster.XXXXXX)"
PID=""
trap '[ -z "$PID" ] || kill "$PID"; rm -rf "$WORK"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns ./cmd/glbctl)
mkdir "$WORK/keys"
"$WORK/glbctl" dnssec keygen glb.test -dir "$WORK/keys" >/dev/null
read -r _ _ _ tag alg dt dg < <("$WORK/glbctl" dnssec ds glb.test -dir "$WORK/keys")
cp "$ROOT/bench/signed.hcl" "$WORK/glb.hcl"
"$WORK/glbdns" -policy "$WORK/glb.hcl" -listen 127.0.0.2:53 -listen 127.0.0.3:53 -rrl-exempt 127.0.0.0/8 2>"$WORK/log" &
PID=$!
for _ in $(seq 50); do dig +short +time=1 @127.0.0.2 glb.test SOA >/dev/null 2>&1 && break; sleep 0.1; done
zonemaster-cli --no-ipv6 --show-module --level INFO --ns ns1.glb.test/127.0.0.2 --ns ns2.glb.test/127.0.0.3 \
  --ds "$tag,$alg,$dt,$dg" glb.test
