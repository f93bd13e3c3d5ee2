#!/usr/bin/env bash
# bench/pair.sh: answers per server CPU-second, glbdns against gdnsd, in many short paired
# runs, with a confidence interval for the ratio.
#
# compare.sh measures each server for 10 s about a minute apart. On this VM the speed of
# the machine drifts by ±20% from one minute to the next, so five such rounds cannot tell
# two servers within 10% apart. Here both servers stay up (pinned to CPU 1, dnsperf on
# CPU 0) and take turns in short runs, in ABBA order, so that drift hits both alike. Each
# pair gives one ratio glbdns/gdnsd of answers per CPU-second. The summary is the geometric
# mean of the ratios with a 95% interval (mean of the log ratios ± t·s/√n).
#
#   ./bench/pair.sh                                  # pool geo mix, 20 pairs of 4 s each
#   PAIRS=30 DURATION=3 SCENARIOS="pool" ./bench/pair.sh
#   RATE=100000 ./bench/pair.sh                      # a fixed load instead of dnsperf's most
#
# CPU is the sum of sum_exec_runtime over the server's threads (/proc/PID/task/*/schedstat,
# ns) across the dnsperf run; answers are dnsperf's completed queries. With RATE unset
# dnsperf sends as fast as it can (2 sockets, 100 in flight), as in compare.sh.
set -euo pipefail
PAIRS="${PAIRS:-20}"; DURATION="${DURATION:-4}"; SCENARIOS="${SCENARIOS:-pool geo mix}"; RATE="${RATE:-}"
[ "$PAIRS" -ge 2 ] && [ "$PAIRS" -le 200 ] || { echo "PAIRS must be 2..200" >&2; exit 2; }
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] || { echo "DURATION must be 1..60" >&2; exit 2; }
. "$(dirname "$0")/pinned.sh"
[ "$SERVERS" = "gdnsd glbdns" ] || { echo "pair.sh: gdnsd is not available" >&2; exit 2; }

declare -A SPIDS PORTS
for name in $SERVERS; do pinned_start "$name"; SPIDS[$name]=$SPID; PORTS[$name]=$PORT; done
sleep 1

cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }

measure() { # measure NAME SCEN: prints "answers cpu_ns"
  local pid=${SPIDS[$1]} before after done q=()
  [ -n "$RATE" ] && q=(-Q "$RATE")
  before=$(cpu_ns "$pid")
  timeout $((DURATION + 20)) taskset -c 0 dnsperf -s 127.0.0.1 -p "${PORTS[$1]}" \
    -d "$BENCH_DIR/queries/$2.txt" -l "$DURATION" -c 2 -q 100 "${q[@]}" $(ecs_args "$2") \
    >"$WORK/dp.out" 2>&1 || true
  after=$(cpu_ns "$pid")
  done=$(awk '/Queries completed:/ {print $3}' "$WORK/dp.out")
  echo "${done:-0} $((after - before))"
}

RES="$WORK/pairs.tsv"; : >"$RES"
echo "pair.sh: $PAIRS pairs of ${DURATION}s per scenario, rate ${RATE:-max}, $(date -u +%FT%TZ)"
for scen in $SCENARIOS; do
  for i in $(seq 1 "$PAIRS"); do
    order="glbdns gdnsd"; [ $((i % 2)) -eq 0 ] && order="gdnsd glbdns"
    line="$scen $i"
    for name in $order; do
      read -r ans ns < <(measure "$name" "$scen")
      line="$line $name $ans $ns"
    done
    echo "$line" >>"$RES"
    echo "$line" | awk '{for (i = 3; i <= NF; i += 3) k[$i] = $(i+1) / ($(i+2) / 1e9) / 1000
      printf "%-4s pair %2d: glbdns %6.1f  gdnsd %6.1f  kq per CPU-s  ratio %.3f\n", $1, $2, k["glbdns"], k["gdnsd"], k["glbdns"] / k["gdnsd"]}'
  done
done

echo
printf "%-5s %6s %24s %24s %8s %17s\n" scen pairs "glbdns kq/CPU-s median" "gdnsd kq/CPU-s median" "ratio" "95% interval"
for scen in $SCENARIOS; do
  awk -v s="$scen" '$1 == s {
      for (i = 3; i <= NF; i += 3) k[$i] = $(i+1) / ($(i+2) / 1e9) / 1000
      if (k["glbdns"] <= 0 || k["gdnsd"] <= 0) next
      n++; g[n] = k["glbdns"]; d[n] = k["gdnsd"]; l[n] = log(k["glbdns"] / k["gdnsd"]); sum += l[n]
    }
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
      return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
    }
    END {
      if (n < 2) { printf "%-5s too few pairs\n", s; exit }
      m = sum / n; for (i = 1; i <= n; i++) v += (l[i] - m)^2; sd = sqrt(v / (n - 1))
      # two-sided 95% t quantile at the nearest tabled degrees of freedom at or below
      # n-1 (60: 2.00, 30: 2.04, 20: 2.09, 10: 2.23, 5: 2.57, 1: 12.71), so the interval
      # errs wide
      t = n - 1 >= 60 ? 2.0 : n - 1 >= 30 ? 2.04 : (n - 1 >= 20 ? 2.09 : (n - 1 >= 10 ? 2.23 : (n - 1 >= 5 ? 2.57 : (n - 1 >= 2 ? 4.3 : 12.71))))
      h = t * sd / sqrt(n)
      printf "%-5s %6d %24.1f %24.1f %8.3f %8.3f–%.3f\n", s, n, median(g, n), median(d, n), exp(m), exp(m - h), exp(m + h)
    }' "$RES"
done
echo "raw pairs: $RES"
