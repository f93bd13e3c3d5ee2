#!/usr/bin/env bash
# bench/signed.sh: answers per server CPU-second for a signed zone, with DO=1 (signed
# answers, from the signature cache once warm) against DO=0 (unsigned, the fast path), in
# short runs taking turns (ABBA) so that the machine's drift hits both alike. glbdns is
# pinned to CPU 1 and dnsperf to CPU 0; the zone (bench/signed.hcl) has a static name, a weighted service
# over two members, a wildcard and a name that does not exist, queried in equal parts.
# Prints each run and the ratio DO=1/DO=0 of answers per CPU-second (geometric mean).
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
cpu_ns() { cat /proc/"$PID"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
run() { # run DO: prints answers per CPU-second
  local before after done flags=()
  [ "$1" = 1 ] && flags=(-D)
  before=$(cpu_ns)
  taskset -c 0 dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -l "$DURATION" -c 2 -q 100 "${flags[@]}" >"$WORK/dp.out" 2>&1 || true
  after=$(cpu_ns)
  done=$(awk '/Queries completed:/ {print $3}' "$WORK/dp.out")
  awk -v n="$done" -v c="$((after - before))" 'BEGIN {printf "%.0f\n", n / (c / 1e9)}'
}
run 1 >/dev/null # warm the signature cache
ratios=()
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then u=$(run 0); s=$(run 1); else s=$(run 1); u=$(run 0); fi
  r=$(awk -v s="$s" -v u="$u" 'BEGIN {printf "%.4f", s / u}')
  ratios+=("$r")
  echo "pair $i: DO=0 $u answers/CPU-s, DO=1 $s answers/CPU-s, ratio $r"
done
printf '%s\n' "${ratios[@]}" | awk '{s += log($1); n++} END {printf "geometric mean DO=1/DO=0: %.3f over %d pairs\n", exp(s / n), n}'
