package face

/*
#include <malloc.h>
*/
import "C"

// ReleaseMemory hands free C-heap pages back to the operating system
// (glibc's malloc_trim). Inference allocates and frees large buffers on
// whichever OS thread cgo runs it on, and glibc keeps freed pages in that
// thread's arena: without this a long-running daemon's RSS creeps up
// though nothing leaks. The agent calls it from its minutely housekeeping;
// it takes well under a millisecond.
func ReleaseMemory() { C.malloc_trim(0) }
