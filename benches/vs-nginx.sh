#!/usr/bin/env bash
# turnpike against nginx `proxy_pass`, side by side in one run: installs
# what it needs (nginx, wrk, h2load; apt), builds the release binary and
# the bench-seed example, then runs benches/vs_nginx.py, which starts a
# backend, nginx and turnpike on loopback, pins them to CPUs, runs
# interleaved rounds and prints markdown tables (BENCHMARKS.md has the
# method and the latest figures).
#
#   benches/vs-nginx.sh                         # every variant, ~15 min
#   VARIANTS=policies,latency benches/vs-nginx.sh
#   ROUNDS=5 DURATION=20 benches/vs-nginx.sh
#   TURNPIKE_BIN=target/release/turnpike SEED_BIN=... benches/vs-nginx.sh
#
# CPU pinning needs two CPUs (CLIENT_CPU, PROXY_CPU; defaults 0 and 1):
# the load generator and the backend share one, each proxy runs alone on
# the other. Other work on the machine shows in the figures: stop it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v taskset >/dev/null || need+=(util-linux)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    echo "vs-nginx: installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    # Debian starts the packaged nginx on port 80; the bench runs its own.
    service nginx stop >/dev/null 2>&1 || true
fi
target=${CARGO_TARGET_DIR:-$root/target}
profile=${PROFILE:-release}
dir=$profile
[ "$profile" = dev ] && dir=debug
if [ -z "${TURNPIKE_BIN:-}" ] || [ -z "${SEED_BIN:-}" ]; then
    (cd "$root" && cargo build --profile "$profile" --bin turnpike --example bench_seed)
fi
export TURNPIKE_BIN=${TURNPIKE_BIN:-$target/$dir/turnpike}
export SEED_BIN=${SEED_BIN:-$target/$dir/examples/bench_seed}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 "$root/benches/vs_nginx.py"
