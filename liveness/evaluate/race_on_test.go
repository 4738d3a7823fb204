//go:build race

package evaluate

// raceEnabled: the race detector slows the pure-Go renderer ~10×.
const raceEnabled = true
