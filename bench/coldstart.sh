#!/usr/bin/env bash
# bench/coldstart.sh: time from exec of glbdns to its first DNS answer on a generated
# policy (bench/genpolicy: SERVICES load-balanced names, NAMES static names). A Python
# driver records the time, execs glbdns, and sends one A query for a service every
# millisecond over UDP on loopback until an answer comes back; it does this RUNS times
# and prints every run, the median and the max.
#
# FROM=file (the default) reads the policy from a local file (-policy); FROM=url fetches it
# from a local URL (-policy-url) as a tar.gz of the policy folder (the .hcl file and its
# zone file), served by Python's http.server on loopback as an object store would serve
# it; FROM=both measures one, then the other.
#
#   ./bench/coldstart.sh                       # 10,000 services, 7 runs, from the file
#   FROM=both SERVICES=10000 NAMES=0 RUNS=11 ./bench/coldstart.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SERVICES="${SERVICES:-10000}"; NAMES="${NAMES:-0}"; RUNS="${RUNS:-7}"; PORT="${PORT:-15399}"; FROM="${FROM:-file}"
HTTP_PORT=$((PORT + 1))
WORK="$(mktemp -d /tmp/glb-coldstart.XXXXXX)"
http_pid=""
trap 'rm -rf "$WORK"; [ -z "$http_pid" ] || kill "$http_pid"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$WORK/" ./cmd/glbdns)
(cd "$ROOT" && go run ./bench/genpolicy -names "$NAMES" -services "$SERVICES" -queries 10 -out "$WORK/p") >/dev/null
case "$FROM" in file) froms=(file) ;; url) froms=(url) ;; both) froms=(file url) ;; *) echo "FROM: file, url or both" >&2; exit 2 ;; esac
if [[ " ${froms[*]} " == *" url "* ]]; then
  mkdir "$WORK/www" && tar czf "$WORK/www/policy.tar.gz" -C "$WORK" p
  python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WORK/www" >/dev/null 2>&1 &
  http_pid=$!
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/policy.tar.gz" && break; sleep 0.1; done
fi
for from in "${froms[@]}"; do
if [ "$from" = url ]; then
  src=(-policy-url "http://127.0.0.1:$HTTP_PORT/policy.tar.gz"); size=$(wc -c < "$WORK/www/policy.tar.gz")
else
  src=(-policy "$WORK/p/glb.hcl"); size=$(wc -c < "$WORK/p/glb.hcl")
fi
echo "from $from: ${src[*]} ($size bytes, $SERVICES services)"
python3 - "$WORK/glbdns" "$PORT" "$RUNS" "${src[@]}" <<'PY'
import socket, struct, subprocess, sys, time, statistics
binary, port, runs, src = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
# genpolicy names its services s0.big.test, s1.big.test, ...
name = b"".join(bytes([len(l)]) + l for l in b"s0.big.test".split(b".")) + b"\0"
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)
times = []
for _ in range(runs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.001)
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, *src, "-listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = None
    deadline = t0 + 10
    while time.perf_counter() < deadline:
        try:
            s.sendto(query, ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
            if data[:2] == b"\x12\x34":
                got = time.perf_counter() - t0
                break
        except (socket.timeout, ConnectionRefusedError):
            pass
    p.terminate(); p.wait(); s.close()
    if got is None:
        sys.exit("no answer within 10 s")
    times.append(got * 1000)
    print(f"first answer after {got*1000:.1f} ms")
print(f"runs {len(times)}  median {statistics.median(times):.1f} ms  max {max(times):.1f} ms")
PY
done
