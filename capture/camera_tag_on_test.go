//go:build mediadevicescamera

package capture

func camerasBuiltIn() bool { return true }
