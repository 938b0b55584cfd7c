#ifndef CFUZZERDRIVER_H
#define CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

// libFuzzer's entry for programs that own main() (LLVM >= 11). SwiftPM links executables with
// `main` renamed to the module's entry, so the fuzzer's own main() cannot be used; ours calls this.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
