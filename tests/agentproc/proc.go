package agentproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStats is what /proc says about a process (an agent under load).
type ProcStats struct {
	RSSMiB float64 `json:"rss_mib"`
	// AnonMiB is the heap part of RSS (Go and C allocations); FileMiB the
	// mapped files' (binary, libraries, the store's mmap).
	AnonMiB    float64 `json:"rss_anon_mib"`
	FileMiB    float64 `json:"rss_file_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	FDs        int     `json:"fds"`
	CPUSeconds float64 `json:"cpu_seconds"` // user + system since start
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux
// everywhere in practice).
const clockTicks = 100

// ReadProcStats reads pid's memory, open descriptors and CPU time; what cannot
// be read stays zero (pid <= 0: all of it).
func ReadProcStats(pid int) ProcStats {
	var p ProcStats
	if pid <= 0 {
		return p
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			kb, _ := strconv.ParseFloat(f[0], 64)
			switch k {
			case "VmRSS":
				p.RSSMiB = kb / 1024
			case "RssAnon":
				p.AnonMiB = kb / 1024
			case "RssFile":
				p.FileMiB = kb / 1024
			case "VmHWM":
				p.PeakRSSMiB = kb / 1024
			}
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		p.FDs = len(fds)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the parenthesized command name; utime and stime are
		// the 14th and 15th fields of the line.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				p.CPUSeconds = (ut + st) / clockTicks
			}
		}
	}
	return p
}
