package capture

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// AcceptedForms lists the source URIs ParseURI understands, for help texts.
const AcceptedForms = "camera:N, v4l2:/dev/videoN, mediadevices:[LABEL|videotest], file:PATH, " +
	"images:DIR/%04d.jpg, http(s)://… (MJPEG), rtsp://…, demo[:VIDEO]; " +
	"camera:, v4l2: and mediadevices: take ?width=&height=&fps=&fourcc="

// ParseURI builds the Source named by uri. Query parameters of camera
// URIs override the matching Options fields. It only parses; devices and
// files are opened by Source.Open.
func ParseURI(uri string, opts Options) (Source, error) {
	src, err := parseURI(strings.TrimSpace(uri), opts)
	if err != nil {
		return nil, fmt.Errorf("capture source %q: %w", redactURI(uri), err)
	}
	return src, nil
}

func parseURI(uri string, opts Options) (Source, error) {
	if uri == "" {
		return nil, fmt.Errorf("empty; accepted forms: %s", AcceptedForms)
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		if uri == "demo" {
			scheme, ok = "demo", true
		} else {
			return nil, fmt.Errorf("no scheme%s; accepted forms: %s", guessHint(uri), AcceptedForms)
		}
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "camera", "v4l2", "mediadevices":
		body, query, _ := strings.Cut(rest, "?")
		if err := applyQuery(&opts, query); err != nil {
			return nil, err
		}
		if err := opts.validate(); err != nil {
			return nil, err
		}
		opts = opts.withDefaults()
		switch scheme {
		case "camera":
			idx := 0
			if body != "" {
				n, err := strconv.Atoi(body)
				if err != nil || n < 0 || n > 63 {
					return nil, fmt.Errorf("camera index must be a number 0..63 (camera:0), got %q; for a device path use v4l2:/dev/videoN", body)
				}
				idx = n
			}
			return &cvSource{kind: cvCamera, index: idx, desc: "camera:" + strconv.Itoa(idx), opts: opts}, nil
		case "v4l2":
			if !strings.HasPrefix(body, "/") {
				return nil, fmt.Errorf("v4l2 needs an absolute device path such as v4l2:/dev/video0, got %q", body)
			}
			return &cvSource{kind: cvV4L2, name: body, desc: "v4l2:" + body, opts: opts}, nil
		default:
			return newMediaDevicesSource(body, opts), nil
		}
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	switch scheme {
	case "file":
		path := rest
		if strings.HasPrefix(rest, "//") {
			u, err := url.Parse(uri)
			if err != nil || (u.Host != "" && u.Host != "localhost") {
				return nil, fmt.Errorf("file URL must be file:PATH or file:///abs/path, got %q", uri)
			}
			path = u.Path
		}
		if path == "" {
			return nil, fmt.Errorf("file needs a path, e.g. file:/data/clip.mp4")
		}
		return &cvSource{kind: cvFile, name: path, desc: "file:" + path, opts: opts}, nil
	case "images":
		if !isSeqPattern(rest) {
			return nil, fmt.Errorf("images needs a path with exactly one number verb such as images:/data/seq/%%04d.jpg, got %q", rest)
		}
		return &cvSource{kind: cvImages, name: rest, desc: "images:" + rest, opts: opts}, nil
	case "http", "https", "rtsp", "rtsps":
		u, err := url.Parse(uri)
		if err != nil {
			// url.Error quotes the input: say only what is wrong.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("bad URL: %w", err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("URL needs a host, e.g. %s://192.0.2.10:8080/stream", scheme)
		}
		desc := u.Redacted()
		if scheme == "http" || scheme == "https" {
			return newHTTPSource(uri, desc, opts), nil
		}
		return &cvSource{kind: cvStream, name: uri, desc: desc, opts: opts}, nil
	case "demo":
		video := opts.DemoVideo
		if rest != "" {
			video = rest
		}
		if video == "" {
			return newPatternSource(opts), nil
		}
		opts.Loop = true
		return demoFileSource{&cvSource{kind: cvFile, name: video, desc: "file:" + video, opts: opts}}, nil
	}
	return nil, fmt.Errorf("unknown scheme %q%s; accepted forms: %s", scheme, guessHint(uri), AcceptedForms)
}

// isSeqPattern reports whether p holds exactly one printf integer verb
// (%d, %4d, %04d), which is what OpenCV's image-sequence backend expands.
func isSeqPattern(p string) bool {
	i := strings.IndexByte(p, '%')
	if i < 0 || strings.Count(p, "%") != 1 {
		return false
	}
	verb := strings.TrimLeft(p[i+1:], "0123456789")
	return strings.HasPrefix(verb, "d") && !strings.ContainsAny(verb[1:], "/")
}

// applyQuery copies width/height/fps/fourcc from a camera URI's query.
func applyQuery(o *Options, query string) error {
	if query == "" {
		return nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("bad query %q: %w", query, err)
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch strings.ToLower(k) {
		case "width":
			o.Width, err = strconv.Atoi(v)
		case "height":
			o.Height, err = strconv.Atoi(v)
		case "fps":
			o.FPS, err = strconv.ParseFloat(v, 64)
		case "fourcc":
			o.FOURCC = strings.ToUpper(v)
		default:
			return fmt.Errorf("unknown parameter %q (accepted: width, height, fps, fourcc)", k)
		}
		if err != nil {
			return fmt.Errorf("parameter %q: %q is not a number", k, v)
		}
	}
	return nil
}

// guessHint suggests the scheme a bare value probably meant.
func guessHint(uri string) string {
	switch {
	case uri == "":
		return ""
	case strings.HasPrefix(uri, "/dev/video"):
		return fmt.Sprintf(" (did you mean v4l2:%s?)", uri)
	case strings.Trim(uri, "0123456789") == "":
		return fmt.Sprintf(" (did you mean camera:%s?)", uri)
	case strings.Contains(uri, "%"):
		return fmt.Sprintf(" (did you mean images:%s?)", uri)
	case strings.ContainsAny(uri, "/.") && !strings.Contains(uri, "://"):
		return fmt.Sprintf(" (did you mean file:%s?)", uri)
	}
	return ""
}

// redactURI hides a password in URL-shaped input for error messages.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err == nil {
		if u.User != nil {
			return u.Redacted()
		}
		return uri
	}
	// Unparsable: blank whatever sits between "://" and the last "@" of
	// the authority, as that is where a password would be.
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return uri
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return uri
	}
	out := scheme + "://xxxxx" + authority[at:]
	if hasPath {
		out += "/" + path
	}
	return out
}
