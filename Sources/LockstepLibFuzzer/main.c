// The libFuzzer harness's executable. Built with `-Xswiftc -sanitize=fuzzer -Xcc -DLOCKSTEP_LIBFUZZER`
// (see Benchmarks/libfuzzer/run.sh) libFuzzer supplies main() and calls LLVMFuzzerTestOneInput (in the
// LockstepFuzzEntry target). In an ordinary build this main() replays input files through the same
// entry point, as libFuzzer does when given files: `LockstepLibFuzzer crash-1234 …`.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef LOCKSTEP_LIBFUZZER
// Swift's crash handler catches the trap of a failing verdict before libFuzzer can write its crash file,
// unless SWIFT_BACKTRACE=enable=no is set when the process starts. libFuzzer calls this first thing, so a
// harness started without it (by ClusterFuzzLite, OSS-Fuzz or by hand) restarts itself with it.
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    const char *setting = getenv("SWIFT_BACKTRACE");
    if (setting && strcmp(setting, "enable=no") == 0) return 0;
    setenv("SWIFT_BACKTRACE", "enable=no", 1);
    execv(access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : (*argv)[0], *argv);
    fprintf(stderr, "LockstepLibFuzzer: could not restart with SWIFT_BACKTRACE=enable=no; crash files may be missing\n");
    return 0;
}
#endif

#ifndef LOCKSTEP_LIBFUZZER
int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: LockstepLibFuzzer FILE...   (replays libFuzzer inputs; build with -sanitize=fuzzer to fuzz)\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        FILE *file = fopen(argv[i], "rb");
        if (!file) { fprintf(stderr, "%s: cannot open\n", argv[i]); return 2; }
        size_t capacity = 1 << 16, size = 0, got;
        uint8_t *bytes = malloc(capacity);
        while (bytes && (got = fread(bytes + size, 1, capacity - size, file)) > 0) {
            size += got;
            if (size == capacity) { capacity *= 2; bytes = realloc(bytes, capacity); }
        }
        fclose(file);
        if (!bytes) { fprintf(stderr, "%s: out of memory\n", argv[i]); return 2; }
        LLVMFuzzerTestOneInput(bytes, size);
        free(bytes);
        printf("%s: pass\n", argv[i]);
    }
    return 0;
}
#endif
