package face

/*
#cgo pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include "threads.h"
*/
import "C"

// SetThreads sets OpenCV's worker thread count for the whole process (it is a
// process-wide setting in OpenCV). n <= 0 leaves OpenCV's default.
func SetThreads(n int) {
	if n > 0 {
		C.bwsagent_set_num_threads(C.int(n))
	}
}

// Threads reports OpenCV's current worker thread count.
func Threads() int { return int(C.bwsagent_get_num_threads()) }
