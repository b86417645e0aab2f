#!/usr/bin/env bash
# Fuzzes the render entry point (graphite/fuzz/fuzz_targets/render.rs: target + window +
# template variable → eval::render_with over an in-memory source under a small budget and a
# 2 s deadline) for SECONDS (default 600), starting from the committed seed corpus
# (graphite/fuzz/seeds/render/). Zero crashes and zero budget overruns expected: any panic,
# stack overflow, input slower than 10 s (-timeout), allocation past the budget (asserted in
# the target) or RSS past 2 GB (-rss_limit_mb) is a failure, written to
# graphite/fuzz/artifacts/render/.
#
# Not part of CI (it needs libFuzzer and the sanitizer flags cargo-fuzz passes, accepted by
# the stable toolchain with RUSTC_BOOTSTRAP=1; see docs/fuzzing.md).
#
# Usage: benches/fuzz-render.sh [SECONDS]   (installs cargo-fuzz from crates.io if missing)
set -euo pipefail
cd "$(dirname "$0")/../graphite/fuzz"
secs="${1:-600}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carbide-fuzz}"
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# The working corpus grows during the run; the committed seeds stay as they are.
mkdir -p corpus/render
cp -n seeds/render/* corpus/render/ 2>/dev/null || true

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo fuzz run render corpus/render -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=2048 -print_final_stats=1 \
    2>&1 | tee "$log" | grep -E '^#[0-9]+.*(pulse|DONE)|==|panicked|ERROR|SUMMARY|stat::' || true
grep -q 'Done [0-9]* runs' "$log" || status=1
execs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo '?')"
echo
if [ "$status" = 0 ]; then
    echo "fuzz-render: clean: $execs inputs in ${secs}s, coverage $cov edges, corpus $(ls corpus/render | wc -l) inputs"
else
    echo "fuzz-render: FAILED after $execs inputs: see graphite/fuzz/artifacts/render/"
    ls artifacts/render/ 2>/dev/null | tail -5
fi
exit "$status"
