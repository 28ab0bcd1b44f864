// C side of the upload progress callback: libpie calls this on one of its runtime threads and
// it forwards to the exported Go function with the cgo.Handle it was given as user_data.
#include <stdint.h>

#include "_cgo_export.h"
#include "pie.h"

void pieGoProgressTrampoline(void *user_data, uint64_t sent, uint64_t total) {
  pieGoProgress((uintptr_t)user_data, sent, total);
}

// C side of the log callback (log.go): forwards to the exported Go functions with the
// cgo.Handle given as user_data.
void pieGoLogTrampoline(void *user_data, enum PieLogLevel level, const char *target,
                        const char *message) {
  pieGoLog((uintptr_t)user_data, (int)level, (char *)target, (char *)message);
}

void pieGoLogDropTrampoline(void *user_data) { pieGoLogDrop((uintptr_t)user_data); }
