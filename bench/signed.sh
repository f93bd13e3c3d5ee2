#!/usr/bin/env bash
# bench/signed.sh: answers per server CPU-second for a signed zone, with DO=1 (signed
# answers, from the signature cache once warm) against DO=0 (unsigned, the fast path), in
# short runs taking turns (ABBA) so that the machine's drift hits both alike. glbdns is
# pinned to CPU 1 and dnsperf to CPU 0; the zone (bench/signed.hcl) has a static name, a weighted service
# over two members, a wildcard and a name that does not exist, queried in equal parts.
# Prints each run and the ratio DO=1/DO=0 of answers per CPU-second (geometric mean).
# PDNS=1 also serves the zone from PowerDNS Authoritative (Debian's pdns-server and
# pdns-backend-bind, sqlite3 for its DNSSEC database), its service as a LUA record
# (pickwrandom over the same two addresses) signed online with its default key
# (pdnsutil secure-zone, ECDSAP256SHA256), pinned alike, and prints glbdns's DO=1 rate
# against PowerDNS's DO=1 rate (use NAMES=web.glb.test, the one name both serve alike).
#
#   ./bench/signed.sh                       # 10 pairs of 4 s
#   PAIRS=20 DURATION=3 ./bench/signed.sh
#   NAMES=web.glb.test ./bench/signed.sh    # the weighted service alone (one answer)
#   ALGORITHM=ED25519 ./bench/signed.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PAIRS="${PAIRS:-10}"; DURATION="${DURATION:-4}"; PORT="${PORT:-5396}"
command -v dnsperf >/dev/null || { echo "signed.sh: dnsperf is not installed (Debian's dnsperf)" >&2; exit 2; }
WORK="$(mktemp -d /tmp/glb-signed.XXXXXX)"
PID=""
trap '[ -z "$PID" ] || kill "$PID"; rm -rf "$WORK"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns ./cmd/glbctl)
mkdir "$WORK/keys"
"$WORK/glbctl" dnssec keygen glb.test -dir "$WORK/keys" -algorithm "${ALGORITHM:-ECDSAP256SHA256}" >/dev/null
cp "$ROOT/bench/signed.hcl" "$WORK/glb.hcl"
for n in ${NAMES:-static.glb.test web.glb.test x.wild.glb.test nope.glb.test}; do echo "$n A"; done >"$WORK/queries.txt"
taskset -c 1 "$WORK/glbdns" -policy "$WORK/glb.hcl" -listen "127.0.0.1:$PORT" -rrl-rate 0 -log-level warn -no-watch 2>"$WORK/log" &
PID=$!
for _ in $(seq 50); do dig +short +time=1 -p "$PORT" @127.0.0.1 static.glb.test A >/dev/null 2>&1 && break; sleep 0.1; done
PPID_PDNS=""; PDNS_PORT=$((PORT + 1))
if [ "${PDNS:-}" = 1 ]; then
  command -v pdns_server >/dev/null && command -v sqlite3 >/dev/null || { echo "PDNS=1: install pdns-server, pdns-backend-bind and sqlite3" >&2; exit 2; }
  mkdir -p "$WORK/pdns/conf" "$WORK/pdns/sock"
  cat >"$WORK/pdns/glb.test.zone" <<'ZONE'
$ORIGIN glb.test.
$TTL 300
@ IN SOA ns1.glb.test. hostmaster.glb.test. 1 14400 3600 1209600 300
@ IN NS ns1.glb.test.
ns1 IN A 192.0.2.53
static IN A 192.0.2.10
*.wild IN A 192.0.2.77
web IN LUA A "pickwrandom({{1,'192.0.2.1'},{1,'192.0.2.2'}})"
ZONE
  echo "zone \"glb.test\" { type master; file \"$WORK/pdns/glb.test.zone\"; };" >"$WORK/pdns/named.conf"
  cat >"$WORK/pdns/conf/pdns.conf" <<CONF
launch=bind
bind-config=$WORK/pdns/named.conf
bind-check-interval=0
bind-dnssec-db=$WORK/pdns/dnssec.db
local-address=127.0.0.1:$PDNS_PORT
enable-lua-records=yes
daemon=no
guardian=no
disable-syslog=yes
socket-dir=$WORK/pdns/sock
webserver=no
api=no
loglevel=3
CONF
  pdnsutil --config-dir="$WORK/pdns/conf" create-bind-db "$WORK/pdns/dnssec.db" >/dev/null 2>&1
  pdnsutil --config-dir="$WORK/pdns/conf" secure-zone glb.test >/dev/null 2>&1
  taskset -c 1 pdns_server --config-dir="$WORK/pdns/conf" 2>"$WORK/pdns.log" &
  PPID_PDNS=$!
  trap '[ -z "$PID" ] || kill "$PID"; [ -z "$PPID_PDNS" ] || kill "$PPID_PDNS"; rm -rf "$WORK"' EXIT
  for _ in $(seq 50); do dig +short +time=1 -p "$PDNS_PORT" @127.0.0.1 static.glb.test A >/dev/null 2>&1 && break; sleep 0.1; done
fi
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
run() { # run DO [pdns]: prints answers per CPU-second
  local before after done flags=() pid=$PID port=$PORT
  [ "$1" = 1 ] && flags=(-D)
  [ "${2:-}" = pdns ] && pid=$PPID_PDNS port=$PDNS_PORT
  before=$(cpu_ns "$pid")
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l "$DURATION" -c 2 -q 100 "${flags[@]}" >"$WORK/dp.out" 2>&1 || true
  after=$(cpu_ns "$pid")
  done=$(awk '/Queries completed:/ {print $3}' "$WORK/dp.out")
  awk -v n="$done" -v c="$((after - before))" 'BEGIN {printf "%.0f\n", n / (c / 1e9)}'
}
run 1 >/dev/null # warm the signature cache
[ -z "$PPID_PDNS" ] || run 1 pdns >/dev/null
ratios=() peers=()
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then u=$(run 0); s=$(run 1); else s=$(run 1); u=$(run 0); fi
  r=$(awk -v s="$s" -v u="$u" 'BEGIN {printf "%.4f", s / u}')
  ratios+=("$r")
  line="pair $i: DO=0 $u answers/CPU-s, DO=1 $s answers/CPU-s, ratio $r"
  if [ -n "$PPID_PDNS" ]; then
    p=$(run 1 pdns)
    pr=$(awk -v s="$s" -v p="$p" 'BEGIN {printf "%.4f", s / p}')
    peers+=("$pr")
    line="$line; PowerDNS DO=1 $p answers/CPU-s, glbdns/PowerDNS $pr"
  fi
  echo "$line"
done
printf '%s\n' "${ratios[@]}" | awk '{s += log($1); n++} END {printf "geometric mean DO=1/DO=0: %.3f over %d pairs\n", exp(s / n), n}'
[ ${#peers[@]} = 0 ] || printf '%s\n' "${peers[@]}" | awk '{s += log($1); n++} END {printf "geometric mean glbdns/PowerDNS, both DO=1: %.3f over %d pairs\n", exp(s / n), n}'
