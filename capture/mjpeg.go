package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

// httpSource reads MJPEG over HTTP (multipart/x-mixed-replace, as served by
// IP cameras, mjpg-streamer and ffmpeg's mpjpeg muxer) natively, so that
// reads honour ctx and a silent server is noticed within ReadTimeout. Any
// other content type (an .mp4 or HLS URL) is handed to OpenCV/FFmpeg.
type httpSource struct {
	url  string
	desc string
	opts Options

	transport *http.Transport
	cancel    context.CancelFunc // aborts the current connection
	body      io.ReadCloser
	br        *bufio.Reader
	boundary  []byte // without leading dashes; learnt from the body if absent
	atPart    bool   // the boundary line was consumed by the previous read
	atEnd     bool   // the closing delimiter was consumed by the previous read
	buf       []byte // reused JPEG buffer
	timedOut  atomic.Bool
	fallback  *cvSource
}

func newHTTPSource(url, desc string, opts Options) *httpSource {
	return &httpSource{url: url, desc: desc, opts: opts}
}

func (s *httpSource) String() string { return s.desc }

func (s *httpSource) Open(ctx context.Context) error {
	_ = s.Close()
	if s.transport == nil {
		s.transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: s.opts.ReadTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   s.opts.ReadTimeout,
			ResponseHeaderTimeout: s.opts.ReadTimeout,
			MaxIdleConns:          1,
		}
	}
	// The connection outlives Open, so it gets its own context; ctx only
	// aborts the connect.
	connCtx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	req, err := http.NewRequestWithContext(connCtx, http.MethodGet, s.url, nil)
	if err != nil {
		cancel()
		return permanent(fmt.Errorf("open %s: %w", s.desc, err))
	}
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("open %s: %w", s.desc, redactErr(err, s.url, s.desc))
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		return fmt.Errorf("open %s: HTTP %s", s.desc, resp.Status)
	}
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !strings.HasPrefix(mt, "multipart/") {
		_ = resp.Body.Close()
		cancel()
		s.fallback = &cvSource{kind: cvStream, name: s.url, desc: s.desc, opts: s.opts}
		return s.fallback.Open(ctx)
	}
	s.cancel = cancel
	s.body = resp.Body
	s.br = bufio.NewReaderSize(resp.Body, 64<<10)
	s.boundary = []byte(strings.TrimLeft(params["boundary"], "-"))
	s.atPart, s.atEnd = false, false
	return nil
}

// redactErr keeps credentials of the URL out of net/http's error text.
func redactErr(err error, raw, redacted string) error {
	if raw == redacted || !strings.Contains(err.Error(), raw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, redacted))
}

// maxBadParts is how many undecodable parts in a row end the connection.
const maxBadParts = 10

func (s *httpSource) Read(ctx context.Context) (Frame, error) {
	if s.fallback != nil {
		return s.fallback.Read(ctx)
	}
	if s.br == nil {
		return Frame{}, fmt.Errorf("read %s: not open", s.desc)
	}
	// Abort the blocked body read when ctx ends or the server goes silent.
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	s.timedOut.Store(false)
	cancel := s.cancel
	timer := time.AfterFunc(s.opts.ReadTimeout, func() {
		s.timedOut.Store(true)
		cancel()
	})
	defer timer.Stop()

	for bad := 0; ; {
		data, err := s.nextPart()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return Frame{}, ctx.Err()
			case s.timedOut.Load():
				return Frame{}, fmt.Errorf("read %s: no frame within %s: %w", s.desc, s.opts.ReadTimeout, ErrNoFrame)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				// A live stream that ends is a disconnect, not the end.
				return Frame{}, fmt.Errorf("read %s: stream ended: %w", s.desc, ErrNoFrame)
			}
			return Frame{}, fmt.Errorf("read %s: %w", s.desc, err)
		}
		m, err := gocv.IMDecode(data, gocv.IMReadColor)
		if err == nil && !m.Empty() {
			return newFrame(m, time.Now()), nil
		}
		_ = m.Close()
		if bad++; bad >= maxBadParts {
			return Frame{}, fmt.Errorf("read %s: %d parts in a row are not decodable images", s.desc, bad)
		}
	}
}

// nextPart returns the body of the next multipart part. It tolerates the
// quirks of camera firmware: boundaries with or without the extra "--",
// a missing boundary parameter, and parts without Content-Length.
func (s *httpSource) nextPart() ([]byte, error) {
	if s.atEnd {
		return nil, io.EOF
	}
	if !s.atPart {
		if err := s.skipToBoundary(); err != nil {
			return nil, err
		}
	}
	s.atPart = false
	length := -1
	for n := 0; ; n++ {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if n > 64 {
			return nil, errors.New("too many part headers")
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(k)), "Content-Length") {
			if l, err := strconv.Atoi(string(bytes.TrimSpace(v))); err == nil && l >= 0 {
				length = l
			}
		}
	}
	if length > s.opts.MaxFrameBytes {
		return nil, fmt.Errorf("part of %d bytes exceeds the %d byte limit", length, s.opts.MaxFrameBytes)
	}
	if length >= 0 {
		if cap(s.buf) < length {
			s.buf = make([]byte, length)
		}
		s.buf = s.buf[:length]
		if _, err := io.ReadFull(s.br, s.buf); err != nil {
			return nil, err
		}
		return s.buf, nil
	}
	// No length: the part runs up to the CRLF before the next boundary.
	s.buf = s.buf[:0]
	for {
		chunk, err := s.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if end, ok := s.isBoundary(chunk); ok {
			// The part is complete either way; the closing delimiter only
			// means there is no next one.
			s.atPart, s.atEnd = !end, end
			return bytes.TrimSuffix(bytes.TrimSuffix(s.buf, []byte("\n")), []byte("\r")), nil
		}
		if len(s.buf)+len(chunk) > s.opts.MaxFrameBytes {
			return nil, fmt.Errorf("part exceeds the %d byte limit", s.opts.MaxFrameBytes)
		}
		s.buf = append(s.buf, chunk...)
	}
}

func (s *httpSource) skipToBoundary() error {
	for skipped := 0; ; {
		chunk, err := s.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if end, ok := s.isBoundary(chunk); ok {
			if end {
				return io.EOF
			}
			return nil
		}
		if skipped += len(chunk); skipped > s.opts.MaxFrameBytes {
			return errors.New("no multipart boundary found")
		}
	}
}

// isBoundary reports whether line is a delimiter line, and whether it is the
// closing one. Without a declared boundary the first "--x" line defines it.
func (s *httpSource) isBoundary(line []byte) (end, ok bool) {
	if !bytes.HasPrefix(line, []byte("--")) || len(line) > 200 {
		return false, false
	}
	tok := bytes.TrimLeft(bytes.TrimRight(line, " \t\r\n"), "-")
	if len(s.boundary) == 0 {
		if len(tok) == 0 {
			return false, false
		}
		s.boundary = append([]byte(nil), tok...)
		return false, true
	}
	if bytes.Equal(tok, s.boundary) {
		return false, true
	}
	if rest, found := bytes.CutPrefix(tok, s.boundary); found && bytes.Equal(rest, []byte("--")) {
		return true, true
	}
	return false, false
}

// readLine reads one header line without its line ending.
func (s *httpSource) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errors.New("part header line too long")
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func (s *httpSource) Close() error {
	var err error
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	if s.body != nil {
		err = s.body.Close()
		s.body, s.br = nil, nil
	}
	if s.fallback != nil {
		err = errors.Join(err, s.fallback.Close())
		s.fallback = nil
	}
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	return err
}
