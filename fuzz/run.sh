#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation (as cargo-fuzz does,
# without needing it or a nightly toolchain) and runs each for a bounded time.
#   fuzz/run.sh [seconds per target] [target ...]
# Inputs that crash a target are written to fuzz/artifacts/<target>/; keep each as a
# regression test beside the code it broke.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(upload_pem csr document_sniff requests stored_events)
fi

export RUSTFLAGS="-Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit target, RUSTFLAGS reach the fuzzed code but not build scripts and
# procedural macros, which must link without libFuzzer.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bins --target "$host"

status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  seeds=()
  if [ -d "seeds/$target" ]; then
    seeds=("seeds/$target")
  fi
  echo "fuzzing $target for ${seconds}s"
  if ! "target/$host/release/$target" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="artifacts/$target/" "corpus/$target" "${seeds[@]}" \
      2> "artifacts/$target.log"; then
    echo "$target: crashed; see fuzz/artifacts/$target/ and fuzz/artifacts/$target.log"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "artifacts/$target.log" \
    | sed "s/^/  $target /" || true
done
exit $status
