#!/usr/bin/env bash
# Soak: the release binary under mixed traffic and configuration churn for
# SOAK_SECONDS (default 600), on loopback only. Figures, no assertions:
# RSS at start / under load / end / max (sampled every 10 s from
# /proc/PID/status), requests and errors by kind, latency p50/p99 (wrk),
# configuration changes made and refused.
#
#   benches/soak.sh                      # builds --release, 10 minutes
#   SOAK_SECONDS=120 benches/soak.sh     # shorter
#   TURNPIKE_BIN=path/to/turnpike benches/soak.sh   # skip the build
#
# Traffic (wrk, `apt-get install wrk`): SOAK_CONNECTIONS (16) connections
# on SOAK_THREADS (2) threads, round-robin over five requests: GET and POST
# (1 KiB) through the demo's echo API with its subscription key, an API
# answered by `return-response`, an API with a rate limit (never reached)
# and expressions, an API with `cache-lookup` / `cache-store`. Every one
# answers 2xx; anything else is an error.
# Churn: one management write every SOAK_CHURN_MS (100) ms, in turn: add an
# API (with an operation), remove an older one, edit the mocked API's
# policy, set a named value the rate-limited API's policy uses, add a
# subscription, remove an older one.
# The backend is the demo's built-in echo (`serve --demo`), in the same
# process: its memory is part of the RSS.
set -euo pipefail

SOAK_SECONDS=${SOAK_SECONDS:-600}
CONNECTIONS=${SOAK_CONNECTIONS:-16}
THREADS=${SOAK_THREADS:-2}
CHURN_MS=${SOAK_CHURN_MS:-100}
ADMIN=soak-admin-key-0123456789abcdef

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${TURNPIKE_BIN:-}" ]; then
    (cd "$root" && cargo build --release --bin turnpike)
    TURNPIKE_BIN=${CARGO_TARGET_DIR:-$root/target}/release/turnpike
fi
for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || {
        echo "soak: needs $tool (apt-get install $tool)" >&2
        exit 2
    }
done

work=$(mktemp -d)
pid=""
churn_pid=""
sampler_pid=""
cleanup() {
    for p in $churn_pid $sampler_pid $pid; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/config.toml" <<EOF
[node]
data_dir = "$work/data"
shutdown_timeout = "5s"
[gateway]
http = "127.0.0.1:0"
[management]
listen = "127.0.0.1:0"
admin_key = "$ADMIN"
[portal]
enabled = false
[telemetry]
access_log = false
EOF

TURNPIKE_LOG=warn "$TURNPIKE_BIN" serve --demo --config "$work/config.toml" \
    >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 1 300); do
    grep -q '^demo seeded' "$work/stdout" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || {
        cat "$work/stderr" >&2
        exit 1
    }
    sleep 0.1
done
gw=http://$(awk '$1 == "listening" && $2 == "gateway-http" {print $3}' "$work/stdout")
mgmt=http://$(awk '$1 == "listening" && $2 == "management" {print $3}' "$work/stdout")/mgmt
key=$(awk '/^demo seeded/ {print $NF}' "$work/stdout")

api() { # METHOD PATH [BODY [CONTENT-TYPE]] -> HTTP status
    curl -s -o /dev/null -w '%{http_code}' -X "$1" "$mgmt$2" \
        -H "Authorization: Bearer $ADMIN" \
        -H "content-type: ${4:-application/json}" ${3:+--data-binary "$3"}
}
must() {
    local s
    s=$(api "$@")
    case $s in 2??) ;; *)
        echo "soak: setup $1 $2 -> $s" >&2
        exit 1
        ;;
    esac
}
echo_url=$(curl -s "$mgmt/apis/echo" -H "Authorization: Bearer $ADMIN" | jq -r .serviceUrl)

mock_policy() {
    cat <<EOF
<policies><inbound><base /><return-response><set-status code="200" reason="OK" />
<set-header name="x-version" exists-action="override"><value>$1</value></set-header>
<set-body>@("mocked " + context.Request.Url.Path)</set-body></return-response></inbound>
<backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>
EOF
}
for a in mock limited cached; do
    must PUT "/apis/$a" "{\"path\":\"$a\",\"serviceUrl\":\"$echo_url\",\"subscriptionRequired\":false}"
    must PUT "/apis/$a/operations/all" '{"method":"*","urlTemplate":"/*"}'
done
must PUT /named-values/soak-nv '{"displayName":"soak-nv","value":"0"}'
must PUT /apis/mock/policy "$(mock_policy 0)" application/xml
must PUT /apis/limited/policy '<policies><inbound><base />
<rate-limit-by-key calls="100000000" renewal-period="60" counter-key="@(context.Request.IpAddress)" />
<set-header name="x-nv" exists-action="override"><value>{{soak-nv}}</value></set-header>
<set-query-parameter name="n" exists-action="override"><value>@(context.Request.Url.Path.Length.ToString())</value></set-query-parameter>
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>' application/xml
must PUT /apis/cached/policy '<policies><inbound><base />
<cache-lookup vary-by-developer="false" vary-by-developer-groups="false" />
</inbound><backend><base /></backend><outbound><base /><cache-store duration="1" /></outbound>
<on-error><base /></on-error></policies>' application/xml

cat >"$work/mix.lua" <<'EOF'
local key = os.getenv("SOAK_KEY")
local requests = {}
counts = {}
local n = 0
function setup(thread)
    table.insert(threads, thread)
end
function init(args)
    local h = { ["Ocp-Apim-Subscription-Key"] = key }
    local hp = { ["Ocp-Apim-Subscription-Key"] = key, ["Content-Type"] = "application/json" }
    requests = {
        wrk.format("GET", "/echo/hello?name=soak", h),
        wrk.format("POST", "/echo/items", hp, string.rep("x", 1024)),
        wrk.format("GET", "/mock/x"),
        wrk.format("GET", "/limited/y"),
        wrk.format("GET", "/cached/z"),
    }
end
function request()
    n = n + 1
    return requests[(n % #requests) + 1]
end
function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
end
threads = {}
function done(summary, latency, requests)
    local all = {}
    for _, t in ipairs(threads) do
        local c = t:get("counts")
        for s, k in pairs(c) do
            all[s] = (all[s] or 0) + k
        end
    end
    local line = "statuses:"
    for s, k in pairs(all) do
        line = line .. " " .. s .. "=" .. k
    end
    io.write(line .. "\n")
    io.write(string.format("latency_us: p50=%d p90=%d p99=%d max=%d\n",
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
    io.write(string.format("errors: connect=%d read=%d write=%d timeout=%d status=%d\n",
        summary.errors.connect, summary.errors.read, summary.errors.write,
        summary.errors.timeout, summary.errors.status))
end
EOF

# Warm-up: every request of the mix answers 2xx before the clock starts.
for p in /echo/hello /mock/x /limited/y /cached/z; do
    h="x-soak: warm-up"
    [ "$p" = /echo/hello ] && h="Ocp-Apim-Subscription-Key: $key"
    s=$(curl -s -o /dev/null -w '%{http_code}' -H "$h" "$gw$p")
    case $s in 2??) ;; *)
        echo "soak: warm-up $p -> $s" >&2
        exit 1
        ;;
    esac
done

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
rss_start=$(rss)
(
    t=0
    while sleep 10; do
        t=$((t + 10))
        echo "$t $(rss)"
    done
) >"$work/rss" &
sampler_pid=$!

(
    i=0 changes=0 refused=0
    pause=$(awk "BEGIN {print $CHURN_MS / 1000}")
    end=$((SECONDS + SOAK_SECONDS))
    while [ "$SECONDS" -lt "$end" ]; do
        i=$((i + 1))
        case $((i % 6)) in
        0) s=$(api PUT "/apis/churn-$i" "{\"path\":\"churn/$i\",\"serviceUrl\":\"$echo_url\",\"subscriptionRequired\":false}")
           [ "${s:0:1}" = 2 ] && s=$(api PUT "/apis/churn-$i/operations/all" '{"method":"*","urlTemplate":"/*"}') ;;
        1) s=$(api DELETE "/apis/churn-$((i - 13))")
           [ "$s" = 404 ] && s=204 ;; # the first rounds have nothing to remove
        2) s=$(api PUT /apis/mock/policy "$(mock_policy "$i")" application/xml) ;;
        3) s=$(api PUT /named-values/soak-nv "{\"displayName\":\"soak-nv\",\"value\":\"$i\"}") ;;
        4) s=$(api PUT "/subscriptions/churn-$i" '{"scope":"/apis/limited","state":"active"}') ;;
        5) s=$(api DELETE "/subscriptions/churn-$((i - 13))")
           [ "$s" = 404 ] && s=204 ;;
        esac
        changes=$((changes + 1))
        [ "${s:0:1}" = 2 ] || refused=$((refused + 1))
        echo "$changes $refused" >"$work/churn"
        sleep "$pause"
    done
) &
churn_pid=$!

SOAK_KEY=$key wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SOAK_SECONDS}s" --timeout 10s \
    --latency -s "$work/mix.lua" "$gw" >"$work/wrk" 2>&1 || {
    echo "soak: wrk failed:" >&2
    cat "$work/wrk" >&2
    exit 1
}
wait "$churn_pid" 2>/dev/null || true
churn_pid=""
rss_end=$(rss)
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""
alive=yes
kill -0 "$pid" 2>/dev/null || alive=no

read -r changes refused <"$work/churn"
requests=$(awk '/requests in/ {print $1}' "$work/wrk")
rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk")
socket=$(awk '/Socket errors/' "$work/wrk")
rss_load=$(awk 'NR == 1 {print $2}' "$work/rss")
rss_max=$(awk -v m="$rss_end" '$2 > m {m = $2} END {print m}' "$work/rss")
printf 'soak: %s s, %s connections on %s threads, %s\n' "$SOAK_SECONDS" "$CONNECTIONS" "$THREADS" "$TURNPIKE_BIN"
printf '  requests: %s (%s/s); non-2xx: %s; %s\n' "$requests" "$rps" "${non2xx:-0}" "${socket:-socket errors: none}"
grep -E '^(statuses|latency_us|errors):' "$work/wrk" | sed 's/^/  /'
printf '  configuration changes: %s (%s/s, %s ms apart plus the write), refused: %s\n' \
    "$changes" "$(awk "BEGIN {printf \"%.1f\", $changes / $SOAK_SECONDS}")" "$CHURN_MS" "$refused"
printf '  RSS KiB: start %s, after 10 s of load %s, end %s, max %s\n' "$rss_start" "${rss_load:-n/a}" "$rss_end" "$rss_max"
printf '  RSS samples (s KiB):'
tr '\n' ';' <"$work/rss" | sed 's/;/; /g'
echo
printf '  process alive at the end: %s; errors logged: %s\n' "$alive" "$(grep -c ERROR "$work/stderr" || true)"
