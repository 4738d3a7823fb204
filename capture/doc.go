// Package capture reads video frames from cameras, files, image sequences,
// network streams and a built-in demo source, and fans them out to
// consumers without ever letting a slow consumer slow the camera.
//
// The package knows nothing about faces. It is split into:
//
//   - Source: one way of producing BGR frames (OpenCV VideoCapture,
//     pion/mediadevices, an MJPEG-over-HTTP reader, a demo pattern).
//     ParseURI builds one from a URI such as "camera:0" or "file:clip.mp4".
//   - Loop: the capture component. It owns one goroutine that reads the
//     Source, reconnects with capped exponential backoff, mirrors frames for
//     a selfie view and hands each frame to every Subscription through a
//     bounded drop-oldest ring.
//   - Stats, and Prometheus collectors (see metrics_prometheus.go).
//
// Source URIs (ParseURI):
//
//	camera:N                      OpenCV device index (default 0)
//	v4l2:/dev/videoN              OpenCV's V4L2 backend on a device path
//	mediadevices:[LABEL|ID]       pion/mediadevices; empty = first real camera
//	                              (V4L2 driver needs -tags mediadevicescamera)
//	mediadevices:videotest        pion's colour-bar test driver
//	file:PATH, file:///PATH       video file, played at its own frame rate
//	images:DIR/%04d.jpg           numbered image sequence (Options.FPS)
//	http(s)://…                   MJPEG (multipart/x-mixed-replace) natively,
//	                              other content through FFmpeg
//	rtsp(s)://…                   through FFmpeg
//	demo, demo:VIDEO              Options.DemoVideo (or VIDEO) looped, else a
//	                              generated moving pattern
//
// camera:, v4l2: and mediadevices: accept ?width=&height=&fps=&fourcc=.
//
// Mat ownership: a Frame returned by Source.Read or Subscription.Next owns
// its Mat and the receiver must call Frame.Close exactly once. Frames are
// moved, never copied by value while still in use.
package capture
