#!/usr/bin/env bash
# bench/xdp.sh: DNS servers measured across a veth pair between two network namespaces,
# so that an AF_XDP path can be compared with socket servers on the same wire.
#
#   ./bench/xdp.sh                                   # every server, mix pool geo, 3 rounds of 10 s
#   ROUNDS=1 DURATION=3 SERVERS="gdnsd glbdns" ./bench/xdp.sh
#   GLBDNS_BIN=/path/to/glbdns-with-xdp ./bench/xdp.sh
#
# Namespaces glbx-srv (vsrv 10.99.0.1/24, fd99::1/64) and glbx-cli (vcli 10.99.0.2/24,
# fd99::2/64), one veth pair of QUEUES (1) RX/TX queues, removed on exit. The server runs
# in glbx-srv pinned to CPU 1 (taskset -c 1, then taskset -a -p for its threads), dnsperf
# in glbx-cli on CPU 0.
#
# Servers (SERVERS): glbdns (sockets), glbdns-xdp (glbdns -xdp vsrv), gdnsd, nsd, knot
# (sockets), knot-xdp (Knot's own AF_XDP, `xdp: listen: vsrv@PORT`). gdnsd, NSD and Knot
# are installed and configured by the shared harness (BENCH_DIR, default ../shared/bench):
# its PEER.sh writes the comparison zone glb.test and answers on 127.0.0.1 inside glbx-srv,
# then this script moves the listen address of that config to 10.99.0.1. A server that
# cannot run (not installed, no XDP program attached, fell back to sockets) is reported as
# not run, with why. An XDP row counts only while `ip link` shows an XDP program on vsrv.
#
# Per run (DURATION s, dnsperf -c CLIENTS -q OUTSTANDING): answers/s and answers per
# CPU-second three ways: the server's utime+stime (/proc/PID/stat, all threads and forked
# children); "+kernel", that plus vsrv's NAPI kthread and ksoftirqd/1, the receive work no
# process is charged for (for AF_XDP: the XDP program and the copy into the UMEM); and the
# busy time of CPU 1 (/proc/stat user+nice+system+irq+softirq), everything that ran there.
# On a shared machine CPU 1 also runs other tenants' work; the table shows that share
# ("CPU1 foreign") so a crowded run can be told from a slow server.
#
# Receive work is kept on the receiver's core by NAPI=threaded (default): GRO on both veth
# ends gives veth its NAPI poller even without XDP, TSO off on both lets every packet use
# it (veth takes NAPI only from a sender without TSO; UDP never uses TSO), threaded NAPI
# makes the poller a kthread, pinned to CPU 1 for vsrv and CPU 0 for vcli. Otherwise the
# receive side of a packet runs as softirq on the core that sent it: the server's queries
# on dnsperf's core, dnsperf's answers on the server's. NAPI=softirq leaves that as the
# kernel does it. vcli sends queries with their UDP checksum filled in (tx checksum
# offload off on vcli), as they come from a real NIC: with the offload on, a query crosses
# veth with only the pseudo-header sum in it (tcpdump on vsrv: "bad udp cksum"), which an
# AF_XDP server that checks checksums would drop. vsrv keeps its offloads: a socket
# server's replies are summed as a NIC would, an AF_XDP server sums its own.
#
# Env: ROUNDS=3 DURATION=10 SCENARIOS="mix pool geo" SERVERS=<all six> QUEUES=1 PORT=5300
#      CLIENTS=2 OUTSTANDING=200 NAPI=threaded GLBDNS_BIN=<built from this tree>
#      GLBDNS_ARGS="-rrl-rate 0" OUT=<dir for results.tsv and logs, default a /tmp dir>
# Exit 2: cannot run at all (not root, no dnsperf, cannot make namespaces).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$ROOT/../shared/bench}"
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-10}"; SCENARIOS="${SCENARIOS:-mix pool geo}"
SERVERS="${SERVERS:-glbdns glbdns-xdp gdnsd nsd knot knot-xdp}"
QUEUES="${QUEUES:-1}"; PORT="${PORT:-5300}"; CLIENTS="${CLIENTS:-2}"; OUTSTANDING="${OUTSTANDING:-200}"
NAPI="${NAPI:-threaded}"; GLBDNS_ARGS="${GLBDNS_ARGS--rrl-rate 0}"
NS_S=glbx-srv; NS_C=glbx-cli; IF_S=vsrv; IF_C=vcli
SRV4=10.99.0.1; CLI4=10.99.0.2; SRV6=fd99::1; CLI6=fd99::2
ME="$(basename "$0")"
skip() { echo "$ME: skipped: $*" >&2; exit 2; }

[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || { echo "ROUNDS must be 1..20" >&2; exit 2; }
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 120 ] || { echo "DURATION must be 1..120" >&2; exit 2; }
[ "$QUEUES" -ge 1 ] && [ "$QUEUES" -le 16 ] || { echo "QUEUES must be 1..16" >&2; exit 2; }
case "$NAPI" in threaded|softirq) ;; *) echo "NAPI must be threaded or softirq" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, XDP)"
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs (server on CPU 1, dnsperf on CPU 0)"
for t in ip taskset ethtool; do command -v "$t" >/dev/null || skip "$t is not installed"; done
command -v dnsperf >/dev/null || skip "dnsperf is not installed (apt-get install dnsperf)"
command -v kdig >/dev/null || skip "kdig is not installed (apt-get install knot-dnsutils)"
[ -r "$BENCH_DIR/queries/mix.txt" ] || skip "no shared harness at BENCH_DIR=$BENCH_DIR (its queries/ and peer scripts)"
for s in $SERVERS; do
  case "$s" in glbdns|glbdns-xdp|gdnsd|nsd|knot|knot-xdp) ;; *) echo "unknown server $s" >&2; exit 2 ;; esac
done

WORK="$(mktemp -d /tmp/glb-xdp.XXXXXX)"; OUT="${OUT:-$WORK}"; mkdir -p "$OUT"
TSV="$OUT/results.tsv"; : >"$TSV"
SPID=""
cleanup() {
  [ -n "$SPID" ] && { kill -TERM "$SPID" 2>/dev/null || true; sleep 0.5; kill -KILL "$SPID" 2>/dev/null || true; }
  # deleting a namespace removes its veth end, the peer and any XDP program on them
  ip netns del "$NS_S" 2>/dev/null || true
  ip netns del "$NS_C" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

S=(ip netns exec "$NS_S"); C=(ip netns exec "$NS_C")

# ---- glbdns binary ----
if [ -n "${GLBDNS_BIN:-}" ]; then
  [ -x "$GLBDNS_BIN" ] || { echo "GLBDNS_BIN=$GLBDNS_BIN is not executable" >&2; exit 2; }
  GLB="$GLBDNS_BIN"
else
  GLB="$WORK/glbdns"
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$GLB" ./cmd/glbdns)
fi

# ---- namespaces and the veth pair ----
for ns in "$NS_S" "$NS_C"; do
  ip netns list | grep -qw "^$ns" && skip "namespace $ns exists already (another run? ip netns del $ns)"
done
ip netns add "$NS_S" 2>"$WORK/netns.err" || skip "cannot create network namespaces: $(cat "$WORK/netns.err")"
ip netns add "$NS_C" 2>"$WORK/netns.err" || skip "cannot create network namespaces: $(cat "$WORK/netns.err")"
ip link add "$IF_S" numtxqueues "$QUEUES" numrxqueues "$QUEUES" netns "$NS_S" type veth \
  peer name "$IF_C" numtxqueues "$QUEUES" numrxqueues "$QUEUES" netns "$NS_C" 2>"$WORK/netns.err" ||
  skip "cannot create the veth pair: $(cat "$WORK/netns.err")"
for ns in "$NS_S" "$NS_C"; do # no DAD: the v6 addresses are usable at once, not tentative
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip netns exec "$ns" ip link set lo up
done
"${S[@]}" sysctl -qw "net.ipv6.conf.$IF_S.accept_dad=0"; "${C[@]}" sysctl -qw "net.ipv6.conf.$IF_C.accept_dad=0"
"${S[@]}" ip addr add "$SRV4/24" dev "$IF_S"; "${S[@]}" ip addr add "$SRV6/64" dev "$IF_S" nodad
"${C[@]}" ip addr add "$CLI4/24" dev "$IF_C"; "${C[@]}" ip addr add "$CLI6/64" dev "$IF_C" nodad
"${C[@]}" ethtool -K "$IF_C" tx off >/dev/null
if [ "$NAPI" = threaded ]; then
  # veth hands a packet to the peer's NAPI only when the peer has GRO (or XDP) and the
  # sender has no TSO; else netif_rx queues it on the sending core. TSO off on both ends
  # (UDP never uses it) keeps every packet, socket or AF_XDP, on the receiver's NAPI.
  for e in "$IF_S" "$IF_C"; do
    ip netns exec "$([ "$e" = "$IF_S" ] && echo "$NS_S" || echo "$NS_C")" ethtool -K "$e" gro on tso off >/dev/null
  done
fi
"${S[@]}" ip link set "$IF_S" up; "${C[@]}" ip link set "$IF_C" up
if [ "$NAPI" = threaded ]; then # veth has its NAPI instances only while up
  "${S[@]}" sh -c "echo 1 >/sys/class/net/$IF_S/threaded" || skip "cannot make NAPI of $IF_S threaded (NAPI=softirq runs without)"
  "${C[@]}" sh -c "echo 1 >/sys/class/net/$IF_C/threaded" || skip "cannot make NAPI of $IF_C threaded (NAPI=softirq runs without)"
fi
# static neighbours: no ARP/ND exchange in the measured path or in the XDP program's way
MAC_S="$("${S[@]}" cat /sys/class/net/$IF_S/address)"; MAC_C="$("${C[@]}" cat /sys/class/net/$IF_C/address)"
"${S[@]}" ip neigh replace "$CLI4" lladdr "$MAC_C" dev "$IF_S" nud permanent
"${S[@]}" ip neigh replace "$CLI6" lladdr "$MAC_C" dev "$IF_S" nud permanent
"${C[@]}" ip neigh replace "$SRV4" lladdr "$MAC_S" dev "$IF_C" nud permanent
"${C[@]}" ip neigh replace "$SRV6" lladdr "$MAC_S" dev "$IF_C" nud permanent
tentative() { "${S[@]}" ip -6 addr show dev "$IF_S" | grep -q tentative || "${C[@]}" ip -6 addr show dev "$IF_C" | grep -q tentative; }
for _ in $(seq 1 30); do tentative || break; sleep 0.1; done # the link-local ones, briefly
if tentative; then
  echo "warn: an IPv6 address is still tentative:" >&2; "${S[@]}" ip -6 addr show dev "$IF_S" >&2; "${C[@]}" ip -6 addr show dev "$IF_C" >&2
fi

# pin_napi: the NAPI kthreads of vsrv to CPU 1 and of vcli to CPU 0. Attaching or
# detaching XDP can make veth set up its NAPI anew (a new kthread), so this runs after
# every server start and before every run.
pin_napi() {
  [ "$NAPI" = threaded ] || return 0
  local pid comm
  while read -r pid comm; do
    case "$comm" in
      "napi/$IF_S-"*) taskset -p -c 1 "$pid" >/dev/null 2>&1 || true ;;
      "napi/$IF_C-"*) taskset -p -c 0 "$pid" >/dev/null 2>&1 || true ;;
    esac
  done < <(ps -e -o pid=,comm=)
}
napi_pids() { ps -e -o pid=,comm= | awk -v p="napi/$1-" 'index($2, p) == 1 {print $1}'; }
napi_threads() { ps -e -o comm= | grep -c "^napi/\($IF_S\|$IF_C\)-" || true; }

xdp_mode() { # the XDP attachment of vsrv as `ip -d link` shows it: mode and program, or "none"
  "${S[@]}" ip -d link show "$IF_S" | awk '
    NR == 1 { for (i = 1; i < NF; i++) if ($i == "mtu") { m = $(i + 2); break } }
    /prog\/xdp/ { p = $1 " " $2 " " $3 " " $4 " " $5 }
    END { if (m !~ /^xdp/) { print "none"; exit }
      d = (m == "xdp") ? "native" : (m == "xdpgeneric") ? "generic" : (m == "xdpoffload") ? "offload" : m
      print m " (" d ") " p }'
}

{
  echo "kernel: $(uname -r)  date: $(date -u +%FT%TZ)  cpus: $(nproc)"
  echo "veth: $IF_S/$IF_C, $QUEUES RX/TX queue(s), NAPI=$NAPI ($(napi_threads) napi kthreads), vcli tx-checksum off$([ "$NAPI" = threaded ] && echo ", GRO on and TSO off on both")"
  echo "dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION, ROUNDS=$ROUNDS SCENARIOS=\"$SCENARIOS\" PORT=$PORT"
  dpkg-query -W -f '${Package} ${Version}\n' dnsperf gdnsd nsd knot 2>/dev/null | sed 's/^/version: /' || true
  echo "version: glbdns $("$GLB" -version 2>&1 | head -1)"
  echo "ip -d link show $IF_S:"
  "${S[@]}" ip -d link show "$IF_S" | sed 's/^/  /'
} | tee "$OUT/header.txt"

# ---- peer configs from the shared harness ----
# PEER.sh start writes its config (glb.test, same records as every other server) and
# proves it answers on 127.0.0.1 inside glbx-srv; that config then listens on 10.99.0.1.
declare -A WHY CMD PEERDIR
PEER_SCRATCH="$WORK/peers"
peer_prepare() { # peer_prepare NAME: sets CMD[NAME] or WHY[NAME]
  local p="$1" d="$PEER_SCRATCH/$1" conf
  if [ ! -x "$BENCH_DIR/$p.sh" ]; then WHY[$p]="no $BENCH_DIR/$p.sh"; return; fi
  if ! "$BENCH_DIR/$p.sh" install >"$WORK/$p.install.log" 2>&1; then
    WHY[$p]="install failed: $(tail -1 "$WORK/$p.install.log")"; return
  fi
  if ! "${S[@]}" env PEER_SCRATCH="$PEER_SCRATCH" "$BENCH_DIR/$p.sh" start "$PORT" >"$WORK/$p.cfg.log" 2>&1; then
    "${S[@]}" env PEER_SCRATCH="$PEER_SCRATCH" "$BENCH_DIR/$p.sh" stop >/dev/null 2>&1 || true
    WHY[$p]="does not start on loopback: $(tail -1 "$WORK/$p.cfg.log")"; return
  fi
  "${S[@]}" env PEER_SCRATCH="$PEER_SCRATCH" "$BENCH_DIR/$p.sh" stop >/dev/null 2>&1 || true
  case "$p" in
    gdnsd) conf="$d/conf/config"; CMD[$p]="/usr/sbin/gdnsd -c $d/conf start" ;;
    nsd) conf="$d/nsd.conf"; CMD[$p]="/usr/sbin/nsd -d -c $conf" ;;
    knot) conf="$d/knot.conf"; CMD[$p]="/usr/sbin/knotd -c $conf" ;;
  esac
  sed -i "s/\b127\.0\.0\.1\([@:]$PORT\)\b/$SRV4\1/g" "$conf"
  if ! grep -q "${SRV4}[@:]$PORT" "$conf"; then unset "CMD[$p]"; WHY[$p]="no listen address to move in $conf"; return; fi
  PEERDIR[$p]="$d"
}
want() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }
for p in gdnsd nsd knot; do
  if want "$p" || { [ "$p" = knot ] && want knot-xdp; }; then peer_prepare "$p"; fi
done
if want knot-xdp; then
  if [ -z "${CMD[knot]:-}" ]; then
    WHY[knot-xdp]="knot: ${WHY[knot]:-not prepared}"
  elif ! ldd /usr/sbin/knotd 2>/dev/null | grep -q libxdp; then
    WHY[knot-xdp]="this knotd is built without XDP (no libxdp)"
  else
    kd="${PEERDIR[knot]}"
    # the same server and zone; Knot's own XDP workers take UDP to PORT on vsrv, one per
    # queue. info logging shows the XDP set-up; Knot logs nothing per query at info.
    sed 's/any: warning/any: info/' "$kd/knot.conf" >"$kd/knot-xdp.conf"
    printf 'xdp:\n    listen: %s@%s\n    udp: on\n    tcp: off\n' "$IF_S" "$PORT" >>"$kd/knot-xdp.conf"
    CMD[knot-xdp]="/usr/sbin/knotd -c $kd/knot-xdp.conf"
    # Knot 3.2 counts a NIC's "combined" channels, which veth does not report: it binds
    # queue 0 only, and what lands on the other queues goes to its sockets.
    [ "$QUEUES" = 1 ] || echo "note: knot-xdp serves only veth queue 0 of $QUEUES over XDP (seen with Knot 3.2.6)"
  fi
fi
CMD[glbdns]="$GLB -listen $SRV4:$PORT -policy $ROOT/bench/glb.test.hcl -log-level warn -no-watch $GLBDNS_ARGS"
CMD[glbdns-xdp]="${CMD[glbdns]} -xdp $IF_S"

# ---- one server up and down ----
answer() { # answer NAME [kdig args]: first answer line or rcode, from the client side
  "${C[@]}" kdig +timeout=1 +retry=0 @"$SRV4" -p "$PORT" "$@" 2>&1 |
    awk 'match($0, /status: [A-Z]+/) {st=substr($0, RSTART+8, RLENGTH-8)} /^;; [A-Z]+ SECTION/ {sec=$2}
      sec == "ANSWER" && /^[^;].*IN[ \t]+A[ \t]/ {a=a $NF " "} END {print st, a}'
}
server_start() { # server_start NAME: sets SPID, or WHY[NAME] and returns 1
  local n="$1" log="$OUT/$1.log" i ok=""
  # shellcheck disable=SC2086
  "${S[@]}" taskset -c 1 ${CMD[$n]} >"$log" 2>&1 </dev/null &
  SPID=$!
  for i in $(seq 1 100); do
    if ! kill -0 "$SPID" 2>/dev/null; then
      WHY[$n]="exited at start: $(grep -v '^[[:space:]]*$' "$log" | head -1)"; SPID=""; return 1
    fi
    if [ "$(answer www.glb.test A)" = "NOERROR 192.0.2.1 " ]; then ok=1; break; fi
    sleep 0.1
  done
  for i in $(tree_pids "$SPID"); do taskset -a -p -c 1 "$i" >/dev/null 2>&1 || true; done
  pin_napi
  [ -n "$ok" ] || { WHY[$n]="no answer from $SRV4:$PORT after 10 s: $(tail -1 "$log")"; server_stop; return 1; }
  case "$n" in
    *-xdp)
      if [ "$n" = glbdns-xdp ] && grep -i 'af_xdp' "$log" | grep -qiE 'fall|fail|unavailable|not supported|socket'; then
        WHY[$n]="glbdns fell back to sockets: $(grep -i 'af_xdp' "$log" | tail -1)"; server_stop; return 1
      fi
      XMODE="$(xdp_mode)"
      if [ "$XMODE" = none ]; then
        WHY[$n]="answers, but no XDP program on $IF_S (sockets answered)$(grep -i xdp "$log" | tail -1 | sed 's/^/: /')"; server_stop; return 1
      fi
      echo "  $n: XDP on $IF_S: $XMODE"; grep -i xdp "$log" | head -3 | sed 's/^/  log: /' || true ;;
  esac
  echo "  $n: pid $SPID; www $(answer www.glb.test A)| nx $(answer nx.glb.test A)| pool $(answer pool.glb.test A)| geo+ECS $(answer geo.glb.test A +subnet=198.51.100.0/24)"
}
server_stop() {
  [ -n "$SPID" ] || return 0
  kill -TERM "$SPID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=""
  # a server killed hard may leave its XDP program behind; the next row must not inherit it
  if [ "$(xdp_mode)" != none ]; then "${S[@]}" ip link set dev "$IF_S" xdp off 2>/dev/null || true; fi
}

# ---- one measurement ----
ecs_args() { [ "$1" = geo ] && echo "-E 8:00011800c63364" || true; } # as bench/pinned.sh: ECS 198.51.100.0/24
tree_pids() { # PID and its descendants, 3 levels (NSD: xfrd, then main, then servers)
  local c g
  echo "$1"
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$c"
    for g in $(cat /proc/"$c"/task/*/children 2>/dev/null); do
      echo "$g"; cat /proc/"$g"/task/*/children 2>/dev/null | tr ' ' '\n'
    done
  done | grep . | sort -u
}
tree_ticks() { # utime+stime of the tree, all threads
  local t=0 p
  for p in $(tree_pids "$1"); do
    [ -r /proc/"$p"/stat ] && t=$((t + $(sed 's/^.*) //' /proc/"$p"/stat | awk '{print $12+$13}')))
  done
  echo "$t"
}
cpu1_ticks() { awk '$1=="cpu1" {print $2+$3+$4+$7+$8}' /proc/stat; }
# kern_ticks: what the server's receive path costs outside the process: utime+stime of
# vsrv's NAPI kthreads and of ksoftirqd/1. Unlike CPU 1's busy time it holds no other
# tenant's work (this machine is shared). Not CPU 1's softirq column: this kernel has no
# IRQ_TIME_ACCOUNTING, so a tick in softirq is charged to that column and to the task it
# interrupted (the server, the kthread) alike, and adding it would count it twice.
kern_ticks() {
  local t=0 p
  for p in $(napi_pids "$IF_S") $(ps -e -o pid=,comm= | awk '$2 == "ksoftirqd/1" {print $1}'); do
    [ -r /proc/"$p"/stat ] && t=$((t + $(sed 's/^.*) //' /proc/"$p"/stat | awk '{print $12+$13}')))
  done
  echo "$t"
}
measure() { # measure ROUND NAME SCEN
  local r="$1" n="$2" s="$3" dp p0 p1 k0 k1 c0 c1 w0 w1
  dp="$OUT/dnsperf.$n.$s.$r.txt"
  pin_napi
  p0=$(tree_ticks "$SPID"); k0=$(kern_ticks); c0=$(cpu1_ticks); w0=$(date +%s.%N)
  # shellcheck disable=SC2046
  timeout $((DURATION + 30)) "${C[@]}" taskset -c 0 dnsperf -s "$SRV4" -p "$PORT" -d "$BENCH_DIR/queries/$s.txt" \
    -c "$CLIENTS" -q "$OUTSTANDING" -t 2 -l "$DURATION" $(ecs_args "$s") >"$dp" 2>&1 || true
  w1=$(date +%s.%N); p1=$(tree_ticks "$SPID"); k1=$(kern_ticks); c1=$(cpu1_ticks)
  awk -v r="$r" -v n="$n" -v s="$s" -v pt=$((p1 - p0)) -v kt=$((k1 - k0)) -v ct=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
      -v el="$(awk -v a="$w0" -v b="$w1" 'BEGIN{print b-a}')" '
    /Queries sent:/ {sent=$3} /Queries completed:/ {done=$3} /Queries lost:/ {lost=$3}
    /Queries per second:/ {qps=$4}
    /Response codes:/ { sub(/^.*Response codes: */, ""); n2=split($0, f, ", ")
      for (i=1; i<=n2; i++) { split(f[i], g, " "); rc[g[1]]=g[2]; rcs=rcs (rcs?",":"") g[1] "=" g[2] } }
    END {
      if (sent == "") { printf "%d\t%s\t%s\t0\t0\t0\t0\t0\t0\t0\t%.2f\t0\t0\t0\tnone\tdnsperf failed\n", r, n, s, el; exit }
      flag=""
      if (lost > sent * 0.01) flag=flag "lost>1% "
      for (k in rc) if (k != "NOERROR" && k != "NXDOMAIN") flag=flag "rcode:" k " "
      nx=(done > 0) ? rc["NXDOMAIN"] / done : 0
      if (s == "mix" && (nx < 0.05 || nx > 0.15)) flag=flag "nxdomain-share "
      if (s != "mix" && nx > 0) flag=flag "nxdomain "
      pcs=pt/hz; kcs=(pt+kt)/hz; ccs=ct/hz
      printf "%d\t%s\t%s\t%.0f\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\n", r, n, s, qps, sent, lost, done,
        (pcs > 0 ? done/pcs : 0), (kcs > 0 ? done/kcs : 0), (ccs > 0 ? done/ccs : 0), el, pcs, kcs, ccs,
        rcs, (flag ? flag : "ok") }' "$dp" |
    tee -a "$TSV" | awk -F'\t' '{printf "  round %s %-10s %-4s %7s answers/s  lost %s/%s  ans per CPU-s: %7s proc %7s +kernel %7s CPU1  (CPU-s %s/%s/%s in %s s)  %s  %s\n", $1, $2, $3, $4, $6, $5, $8, $9, $10, $12, $13, $14, $11, $16, $15}'
}

# ---- rounds: every server x every scenario, order rotated each round ----
read -r -a SV <<<"$SERVERS"; read -r -a SC <<<"$SCENARIOS"
supports() { # scenarios that a server's zone has (NSD: static only, no geo)
  case "$1:$2" in nsd:geo|nsd:pool2) return 1 ;; esac; return 0
}
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r"
  for i in $(seq 0 $((${#SV[@]} - 1))); do
    n="${SV[$(( (i + r - 1) % ${#SV[@]} ))]}"
    if [ -n "${WHY[$n]:-}" ]; then [ "$r" = 1 ] && echo "  $n: not run: ${WHY[$n]}"; continue; fi
    server_start "$n" || { echo "  $n: not run: ${WHY[$n]}"; continue; }
    for j in $(seq 0 $((${#SC[@]} - 1))); do
      s="${SC[$(( (j + r - 1) % ${#SC[@]} ))]}"
      supports "$n" "$s" || continue
      measure "$r" "$n" "$s"
    done
    server_stop
  done
done

# ---- the table: medians over rounds, ratios to gdnsd ----
echo
echo "Medians over $ROUNDS round(s) of ${DURATION} s, $(uname -r), $QUEUES queue(s), NAPI=$NAPI; x gdnsd: ratio to gdnsd in the same scenario."
echo "Answers per CPU-second of: proc = the server process (utime+stime, all threads); +kernel = that plus vsrv's NAPI"
echo "kthread and ksoftirqd/1; CPU1 = CPU 1's busy time (everything that ran there, other tenants too)."
echo "CPU1 foreign: CPU 1's busy time that was neither the server nor its kernel work, % of the run: other"
echo "tenants of a shared machine; where it is high, answers/s and the CPU1 column mean little."
echo
awk -F'\t' '
  function med(key,   n, i, j, t, a) { n=split(vals[key], a, " ")
    for (i=2; i<=n; i++) { t=a[i]; for (j=i-1; j>=1 && a[j]+0>t+0; j--) a[j+1]=a[j]; a[j+1]=t }
    return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
  function ratio(x, col,   g) { g="gdnsd" SUBSEP sc
    if (!(g in seen) || med(g SUBSEP col) <= 0) return "-"
    return sprintf("%.2f", x / med(g SUBSEP col)) }
  { k=$2 SUBSEP $3; if (!(k in seen)) { seen[k]=1; order[++m]=k }
    vals[k SUBSEP "q"]=vals[k SUBSEP "q"] " " $4; vals[k SUBSEP "p"]=vals[k SUBSEP "p"] " " $8
    vals[k SUBSEP "k"]=vals[k SUBSEP "k"] " " $9; vals[k SUBSEP "c"]=vals[k SUBSEP "c"] " " $10; runs[k]++
    vals[k SUBSEP "o"]=vals[k SUBSEP "o"] " " (($11 > 0 && $14 > $13) ? ($14 - $13) / $11 * 100 : 0)
    if ($16 != "ok") flags[k]=flags[k] "r" $1 ": " $16 " " }
  END {
    print "| server | scenario | answers/s | ans/CPU-s proc | +kernel | CPU1 | proc x gdnsd | +kernel x gdnsd | CPU1 x gdnsd | CPU1 foreign | runs | check |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for (i=1; i<=m; i++) { k=order[i]; split(k, ks, SUBSEP); sc=ks[2]
      q=med(k SUBSEP "q"); p=med(k SUBSEP "p"); kk=med(k SUBSEP "k"); c=med(k SUBSEP "c")
      printf "| %s | %s | %.0f | %.0f | %.0f | %.0f | %s | %s | %s | %.0f%% | %d | %s |\n", ks[1], sc, q, p, kk, c,
        ratio(p, "p"), ratio(kk, "k"), ratio(c, "c"), med(k SUBSEP "o"), runs[k], (flags[k] ? flags[k] : "ok") } }' \
  <(sort -t$'\t' -k3,3 -k2,2 -s "$TSV")
for n in $SERVERS; do [ -n "${WHY[$n]:-}" ] && echo "- $n: not run: ${WHY[$n]}"; done
echo
echo "raw rows: $TSV (round server scenario qps sent lost completed ans/CPU-s:proc,+kernel,CPU1 elapsed CPU-s:proc,+kernel,CPU1 rcodes check)"
echo "logs and dnsperf outputs: $OUT"
