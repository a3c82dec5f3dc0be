#!/usr/bin/env bash
# Builds the libFuzzer harness (a separate scratch path, so the ordinary build never sees the flags) and
# runs it on a corpus directory for a time budget. Crash files land in the artifacts directory;
# `lockstep show --from-bytes FILE` prints the program one of them decodes to.
#
#   Benchmarks/libfuzzer/run.sh [SECONDS] [CORPUS_DIR] [ARTIFACT_DIR] [extra libFuzzer flags…]
#
# LOCKSTEP_SEEDED_BUG=<slip> switches on one of the engine's deliberate test-only slips.
#
# Exit status: libFuzzer's (0 when the time ran out without a finding), or 125 when the harness does
# not build (so a caller can tell a broken build from a fuzzing result).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"; corpus="${2:-.build-libfuzzer/corpus}"; artifacts="${3:-.build-libfuzzer/artifacts}"
shift $(( $# < 3 ? $# : 3 ))
swift build -c release --scratch-path .build-libfuzzer --product LockstepLibFuzzer \
  -Xswiftc -sanitize=fuzzer -Xcc -DLOCKSTEP_LIBFUZZER >&2 \
  || { echo "Benchmarks/libfuzzer/run.sh: the libFuzzer harness does not build" >&2; exit 125; }
mkdir -p "$corpus" "$artifacts"
# The harness restarts itself with this if it is missing (main.c); setting it here saves the restart.
export SWIFT_BACKTRACE=enable=no
exec .build-libfuzzer/release/LockstepLibFuzzer -max_total_time="$seconds" -artifact_prefix="$artifacts/" \
  -print_final_stats=1 "$@" "$corpus"
