#!/usr/bin/env bash
# Builds the fuzz targets (nightly, cargo-fuzz) and runs each in turn for a
# bounded time, then prints a table: executions, exec/s, corpus size and the
# crashes (crash/timeout/oom artifacts) each run found. Exits 1 if any run
# found one; the inputs are under fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     # default 60 s, every target
#
# Environment: FUZZ_TARGET_DIR (build directory, default fuzz/target; keep
# it apart from the main target directory, the instrumented build differs),
# SANITIZER (none | address, default none: the crate is safe Rust, so the
# sanitizer mostly costs speed), FUZZ_TIMEOUT (seconds one input may take,
# default 10), FUZZ_RSS_MB (memory cap, default 2048).
#
# Runs are sequential, one process each (the fuzzer shares the machine).
# The corpora grow across runs (fuzz/corpus/<target>/, seeded by seed.sh
# when empty); every run is appended to fuzz/artifacts/runs.tsv, and the
# table's last column is the target's executions over all runs.
set -uo pipefail

FUZZ="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$FUZZ")"
SECONDS_EACH="${1:-60}"
shift $(( $# > 0 ? 1 : 0 ))
ALL=(policy_xml expr_parse expr_eval openapi_import config_toml url_template cluster_export)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
TD="${FUZZ_TARGET_DIR:-$FUZZ/target}"
SANITIZER="${SANITIZER:-none}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
RSS="${FUZZ_RSS_MB:-2048}"
TRIPLE="$(rustc +nightly -vV | sed -n 's/^host: //p')"

cd "$ROOT" || exit 2
cargo +nightly fuzz build -O -a -s "$SANITIZER" --codegen-units "${FUZZ_CGU:-16}" \
    --target-dir "$TD" || { echo "run.sh: build failed" >&2; exit 2; }

if [ -z "$(ls -A "$FUZZ/corpus/${TARGETS[0]}" 2>/dev/null)" ]; then
    "$FUZZ/seed.sh" || echo "run.sh: seeding failed; starting from empty corpora" >&2
fi

LOG="$FUZZ/artifacts/runs.tsv"
mkdir -p "$FUZZ/artifacts"
[ -f "$LOG" ] || printf 'date\ttarget\tseconds\texecs\texec_per_s\tcrashes\n' > "$LOG"
ROWS=()
FAILED=0
for t in "${TARGETS[@]}"; do
    corpus="$FUZZ/corpus/$t"
    arts="$FUZZ/artifacts/$t"
    mkdir -p "$corpus" "$arts"
    mark="$(mktemp)"
    out="$arts/last-run.log"
    echo "== $t: ${SECONDS_EACH}s"
    "$TD/$TRIPLE/release/$t" "$corpus" \
        -artifact_prefix="$arts/" \
        -max_total_time="$SECONDS_EACH" \
        -timeout="$TIMEOUT" \
        -rss_limit_mb="$RSS" \
        -print_final_stats=1 \
        > "$out" 2>&1
    rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)"
    # libFuzzer prints no final stats when it stops on a crash: use the
    # last status line instead.
    if [ -z "$execs" ]; then
        execs="$(grep -o '^#[0-9]*' "$out" | tail -1 | tr -d '#')"
        rate="$(grep -o 'exec/s: [0-9]*' "$out" | tail -1 | tr -dc '0-9')"
    fi
    found="$(find "$arts" -newer "$mark" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \))"
    rm -f "$mark"
    crashes="$(printf '%s' "$found" | grep -c . || true)"
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without an artifact (see last-run.log)
    fi
    [ "$crashes" -gt 0 ] && FAILED=1
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$SECONDS_EACH" \
        "${execs:-0}" "${rate:-0}" "$crashes" >> "$LOG"
    total="$(awk -F'\t' -v t="$t" '$2 == t { s += $4 } END { print s + 0 }' "$LOG")"
    ROWS+=("$(printf '%-16s %12s %8s %8s %8s %14s' "$t" "${execs:-0}" "${rate:-0}" \
        "$(ls "$corpus" | wc -l)" "$crashes" "$total")")
    if [ "$crashes" -gt 0 ]; then
        grep -m1 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$out" | sed 's/^/   /'
        printf '%s\n' "$found" | sed 's/^/   /'
    fi
done

echo
printf '%-16s %12s %8s %8s %8s %14s\n' target execs exec/s corpus crashes "execs (all)"
printf '%s\n' "${ROWS[@]}"
exit "$FAILED"
