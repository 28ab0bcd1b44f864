package pie

// The Go functions libpie's log callback reaches through trampoline.c. (A file with //export
// may only declare C functions in its preamble, so the helpers live in log.go.)

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

//export pieGoLog
func pieGoLog(handle C.uintptr_t, level C.int, target, message *C.char) {
	if f, ok := cgo.Handle(handle).Value().(LogFunc); ok {
		f(LogLevel(level), C.GoString(target), C.GoString(message))
	}
}

//export pieGoLogDrop
func pieGoLogDrop(handle C.uintptr_t) {
	cgo.Handle(handle).Delete()
}
