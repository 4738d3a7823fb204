//go:build mediadevicescamera

package capture

// pion's V4L2 camera driver needs cgo, <linux/videodev2.h> and
// github.com/blackjack/webcam, and probes /dev/video* when the program
// starts, so it is opt-in: go build -tags mediadevicescamera.
import _ "github.com/pion/mediadevices/pkg/driver/camera"
