#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script: one fuzz target, lockstep_engine, in $OUT.
#
# The base image's `precompile_swift` puts the sanitizer and fuzzer flags for this build in $SWIFTFLAGS
# (-sanitize=fuzzer plus the sanitizer the engine asked for). LOCKSTEP_LIBFUZZER keeps the harness's own
# replay main() out, so libFuzzer's main() is the one linked. This is the same build as
# Benchmarks/libfuzzer/run.sh, which is what is tested on this repository's CI machine; this script itself
# is not run there (see README, "Distributed fuzzing").
. precompile_swift
cd "$SRC/lockstep"
swift build -c release --product LockstepLibFuzzer $SWIFTFLAGS -Xcc -DLOCKSTEP_LIBFUZZER
cp .build/release/LockstepLibFuzzer "$OUT/lockstep_engine"

# Inputs are decision strings for the program generator (every byte string is a program); a few hundred
# bytes reach deep programs, so longer inputs only slow the fuzzer down.
cat > "$OUT/lockstep_engine.options" <<'OPTIONS'
[libfuzzer]
max_len = 2048
OPTIONS

# No environment is needed at run time: the harness restarts itself with SWIFT_BACKTRACE=enable=no
# (Swift's crash handler would otherwise keep libFuzzer from writing its crash file); see main.c.
