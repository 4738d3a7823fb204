//go:build race

package preview

// raceEnabled: the race detector slows encoding ~10×, so throughput bars
// are reported but not asserted.
const raceEnabled = true
