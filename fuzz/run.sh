#!/usr/bin/env bash
# Fuzzes the streaming JSON → COPY path (Sources/JSONParsing, Sources/CopyEncoding) with libFuzzer and
# AddressSanitizer. Not part of ci/test.sh: a fuzz run is open-ended; run it after changing the
# tokenizer, the encoder or the transcoder.
#
#   fuzz/run.sh [SECONDS]    (default 60)
#
# The harness (fuzz/FuzzCopyRowEncoder.swift) fails on any crash, trap or memory error, and when the
# output or the error changes with how the input is split into chunks. The growing corpus lives in
# fuzz/.build/corpus (seeded from fuzz/corpus); a crashing input is written to fuzz/.build/ as crash-*.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SECONDS_TO_RUN=${1:-60}
OUT=.build
mkdir -p "$OUT/corpus" "$OUT/modules"
cp -n corpus/* "$OUT/corpus/"
# (ld.gold warns about every ASan helper symbol; those lines are dropped, errors still fail the run.)
quiet() { "$@" 2> >(grep -v "Cannot export local symbol" >&2); }
# The two modules are built as in the package, with coverage and ASan instrumentation, as object
# files that the harness links.
module() {
    local name=$1
    shift
    echo "==> compiling $name (swiftc -sanitize=fuzzer,address)"
    quiet swiftc -O -parse-as-library -sanitize=fuzzer,address -module-name "$name" \
        -I "$OUT/modules" -emit-module -emit-module-path "$OUT/modules/$name.swiftmodule" \
        -wmo -c "../Sources/$name"/*.swift -o "$OUT/$name.o" "$@"
}
module JSONParsing
module CopyEncoding
echo "==> building the fuzzer"
quiet swiftc -O -parse-as-library -sanitize=fuzzer,address -module-name StarpipeFuzz -I "$OUT/modules" \
    FuzzCopyRowEncoder.swift "$OUT/JSONParsing.o" "$OUT/CopyEncoding.o" -o "$OUT/fuzz-copy-row-encoder"
echo "==> fuzzing for ${SECONDS_TO_RUN}s"
"$OUT/fuzz-copy-row-encoder" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -dict=json.dict \
    -artifact_prefix="$OUT/" -print_final_stats=1 "$OUT/corpus"
