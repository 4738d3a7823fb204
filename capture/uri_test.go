package capture

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		uri     string
		opts    Options
		typ     string // %T of the source
		str     string // String(), or "" to skip
		wantErr string // substring of the error
	}{
		{uri: "camera:0", typ: "*capture.cvSource", str: "camera:0"},
		{uri: "camera:", typ: "*capture.cvSource", str: "camera:0"},
		{uri: "camera:2?width=1280&height=720&fps=30&fourcc=mjpg", typ: "*capture.cvSource", str: "camera:2"},
		{uri: "v4l2:/dev/video0", typ: "*capture.cvSource", str: "v4l2:/dev/video0"},
		{uri: "mediadevices:", typ: "*capture.mdSource", str: "mediadevices:"},
		{uri: "mediadevices:videotest", typ: "*capture.mdSource", str: "mediadevices:videotest"},
		{uri: "file:/data/clip.mp4", typ: "*capture.cvSource", str: "file:/data/clip.mp4"},
		{uri: "file:///data/clip.mp4", typ: "*capture.cvSource", str: "file:/data/clip.mp4"},
		{uri: "file:rel/clip.mp4", typ: "*capture.cvSource", str: "file:rel/clip.mp4"},
		{uri: "images:/data/seq/%04d.jpg", typ: "*capture.cvSource", str: "images:/data/seq/%04d.jpg"},
		{uri: "images:/data/seq/img%d.png", typ: "*capture.cvSource"},
		{uri: "http://192.0.2.1:8080/video", typ: "*capture.httpSource", str: "http://192.0.2.1:8080/video"},
		{uri: "https://cam.example/mjpg", typ: "*capture.httpSource"},
		{uri: "http://admin:secret@192.0.2.1/video", typ: "*capture.httpSource", str: "http://admin:xxxxx@192.0.2.1/video"},
		{uri: "rtsp://user:pw@192.0.2.1:554/stream1", typ: "*capture.cvSource", str: "rtsp://user:xxxxx@192.0.2.1:554/stream1"},
		{uri: "demo", typ: "*capture.patternSource"},
		{uri: "  demo  ", typ: "*capture.patternSource"},
		{uri: "demo", opts: Options{DemoVideo: "/data/face.mp4"}, typ: "capture.demoFileSource", str: "demo(file:/data/face.mp4)"},
		{uri: "demo:/data/other.mp4", typ: "capture.demoFileSource", str: "demo(file:/data/other.mp4)"},

		{uri: "", wantErr: "empty; accepted forms: camera:N"},
		{uri: "0", wantErr: "did you mean camera:0?"},
		{uri: "/dev/video0", wantErr: "did you mean v4l2:/dev/video0?"},
		{uri: "clip.mp4", wantErr: "did you mean file:clip.mp4?"},
		{uri: "seq/%04d.jpg", wantErr: "did you mean images:seq/%04d.jpg?"},
		{uri: "webcam:0", wantErr: `unknown scheme "webcam"`},
		{uri: "ftp://host/x", wantErr: "accepted forms"},
		{uri: "camera:front", wantErr: "camera index must be a number"},
		{uri: "camera:-1", wantErr: "camera index must be a number"},
		{uri: "camera:0?width=wide", wantErr: `parameter "width": "wide" is not a number`},
		{uri: "camera:0?zoom=2", wantErr: `unknown parameter "zoom"`},
		{uri: "camera:0?fourcc=H264X", wantErr: "'fourcc' must be 4 characters"},
		{uri: "camera:0?width=-5", wantErr: "must not be negative"},
		{uri: "v4l2:video0", wantErr: "absolute device path"},
		{uri: "file:", wantErr: "file needs a path"},
		{uri: "file://otherhost/x.mp4", wantErr: "file URL must be"},
		{uri: "images:/data/seq", wantErr: "exactly one number verb"},
		{uri: "images:/data/%d/%04d.jpg", wantErr: "exactly one number verb"},
		{uri: "images:/data/%s.jpg", wantErr: "exactly one number verb"},
		{uri: "http://", wantErr: "URL needs a host"},
		{uri: "rtsp://user:hunter2@[bad", wantErr: "bad URL"},
		{uri: "demo", opts: Options{FPS: -1}, wantErr: "'fps' must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			src, err := ParseURI(tt.uri, tt.opts)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseURI(%q) = %v, want error containing %q", tt.uri, src, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error leaks the password: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURI(%q): %v", tt.uri, err)
			}
			if got := typeName(src); got != tt.typ {
				t.Errorf("type %s, want %s", got, tt.typ)
			}
			if tt.str != "" && src.String() != tt.str {
				t.Errorf("String() = %q, want %q", src.String(), tt.str)
			}
		})
	}
}

func TestParseURIQueryOverridesOptions(t *testing.T) {
	src, err := ParseURI("camera:1?width=1280&height=720&fps=30&fourcc=mjpg", Options{Width: 640, FOURCC: "YUYV"})
	if err != nil {
		t.Fatal(err)
	}
	o := src.(*cvSource).opts
	if o.Width != 1280 || o.Height != 720 || o.FPS != 30 || o.FOURCC != "MJPG" || src.(*cvSource).index != 1 {
		t.Errorf("options %+v, index %d", o, src.(*cvSource).index)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *cvSource:
		return "*capture.cvSource"
	case *mdSource:
		return "*capture.mdSource"
	case *httpSource:
		return "*capture.httpSource"
	case *patternSource:
		return "*capture.patternSource"
	case demoFileSource:
		return "capture.demoFileSource"
	}
	return "unknown"
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"camera:0", "v4l2:/dev/video0", "file:x", "images:%04d.jpg",
		"http://h/x", "rtsp://u:p@h/x", "mediadevices:videotest", "demo", "camera:0?width=1&fourcc=MJPG"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		src, err := ParseURI(uri, Options{})
		if err == nil && src == nil {
			t.Fatal("nil source without error")
		}
		if err == nil {
			_ = src.String()
		}
	})
}
