#!/usr/bin/env bash
# Benchmark: CPU per run of the `process` collector reading /proc directly against the
# sysinfo scan it replaced, same groups, same run, alternating rounds (same-run ratios only
# compare). ROUNDS (default 7) and RUNS per round (default 50) from the environment.
# Usage: benches/process-scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carbide-target}"
cargo bench -q -p carbide-collector --no-default-features --features process --bench process_scan
