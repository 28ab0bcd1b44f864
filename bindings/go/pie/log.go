package pie

/*
#include <stdint.h>
#include "pie.h"

void pieGoLogTrampoline(void *user_data, enum PieLogLevel level, const char *target,
                        const char *message);
void pieGoLogDropTrampoline(void *user_data);

// The C function pointers and the handle-as-pointer conversion happen on the C side (see
// pie_go_upload_program in pie.go for why).
static enum PieStatus pie_go_set_log_callback(int32_t level, uintptr_t handle,
                                              struct PieError **err) {
  if (handle == 0) return pie_set_log_callback(PIE_LOG_LEVEL_OFF, NULL, NULL, NULL, err);
  return pie_set_log_callback(level, pieGoLogTrampoline, (void *)handle,
                              pieGoLogDropTrampoline, err);
}
*/
import "C"

import "runtime/cgo"

// LogLevel is the severity of a log record (PieLogLevel). A logger set for one level receives
// that level and every more severe one.
type LogLevel int

// The log levels of pie.h, from silent to most verbose.
const (
	LogOff   LogLevel = C.PIE_LOG_LEVEL_OFF
	LogError LogLevel = C.PIE_LOG_LEVEL_ERROR
	LogWarn  LogLevel = C.PIE_LOG_LEVEL_WARN
	LogInfo  LogLevel = C.PIE_LOG_LEVEL_INFO
	LogDebug LogLevel = C.PIE_LOG_LEVEL_DEBUG
	LogTrace LogLevel = C.PIE_LOG_LEVEL_TRACE
)

// String gives the level's name ("warn", ...).
func (l LogLevel) String() string {
	switch l {
	case LogOff:
		return "off"
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	case LogDebug:
		return "debug"
	case LogTrace:
		return "trace"
	}
	return "unknown"
}

// LogFunc receives libpie's diagnostics: the level, the part of libpie that logs
// ("pie::connection", "pie::auth", "pie::upload", "pie::launch", "pie::protocol") and a
// readable message. It runs on the thread that logs (a libpie network thread, or the thread
// of the call), possibly on several at once: keep it quick and never block in it (a network
// thread waits for it). The wording of messages is not a stable interface.
type LogFunc func(level LogLevel, target, message string)

// SetLogger sends libpie's diagnostics, for the whole process, to f: records of level and
// more severe ones (pie_set_log_callback). It replaces any logger set before. A nil f or
// LogOff removes the logger; with no logger set, logging costs libpie next to nothing.
func SetLogger(level LogLevel, f LogFunc) error {
	var handle cgo.Handle
	if f != nil && level != LogOff {
		// Released by libpie through pieGoLogDrop once the logger is replaced or removed.
		handle = cgo.NewHandle(f)
	}
	var cerr *C.struct_PieError
	st := C.pie_go_set_log_callback(C.int32_t(level), C.uintptr_t(handle), &cerr)
	if st != C.PIE_STATUS_OK && handle != 0 {
		handle.Delete() // refused: libpie took nothing
	}
	return check(st, &cerr)
}
