#!/bin/sh
# examples/push/push.sh: a health reporter without a daemon, for cron or a function
# runtime. It checks one backend's URL and pushes the verdict to a glbdns node, counting
# for TTL: run it more often than TTL (every 20 s for 60 s), or the verdict goes stale.
#
#   GLBDNS_ADMIN_URL=http://127.0.0.1:8053 GLBDNS_REPORT_TOKEN=... \
#     POOL=web MEMBER=fra-1 URL=https://fra-1.example.net/healthz ./push.sh
set -eu
: "${GLBDNS_ADMIN_URL:?}" "${GLBDNS_REPORT_TOKEN:?}" "${POOL:?}" "${MEMBER:?}" "${URL:?}"
TTL="${TTL:-60s}" REPORTER="${REPORTER:-$(hostname)}"
if out=$(curl -fsS -m 5 -o /dev/null -w '%{http_code}' "$URL" 2>&1); then
  status=up reason=""
else
  status=down reason="GET $URL: $out"
fi
body=$(printf '{"reporter":"%s","ttl":"%s","members":[{"pool":"%s","member":"%s","status":"%s","reason":"%s"}]}' \
  "$REPORTER" "$TTL" "$POOL" "$MEMBER" "$status" "$(printf %s "$reason" | tr -d '"\\\r' | tr '\n' ' ')")
curl -fsS -m 5 -H "Authorization: Bearer $GLBDNS_REPORT_TOKEN" \
  -H 'Content-Type: application/json' --data "$body" "$GLBDNS_ADMIN_URL/v1/health/report"
