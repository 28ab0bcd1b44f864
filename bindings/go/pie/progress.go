package pie

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// ProgressFunc receives (bytes sent, bytes total) during an upload. It runs on a libpie thread
// while the upload is in progress: keep it short and do not call back into this package.
type ProgressFunc func(sent, total uint64)

//export pieGoProgress
func pieGoProgress(handle C.uintptr_t, sent, total C.uint64_t) {
	if f, ok := cgo.Handle(handle).Value().(ProgressFunc); ok && f != nil {
		f(uint64(sent), uint64(total))
	}
}
