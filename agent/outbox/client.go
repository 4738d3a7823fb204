package outbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/google/uuid"
)

// Client is the centre, as the sender needs it. Every call takes the job
// id: it travels as the Idempotency-Key header, so a centre that knows it
// (another bwsagent) can make re-deliveries no-ops.
type Client interface {
	// Status reports whether the class is enrolled centrally.
	Status(ctx context.Context, class bws.BCID) (ClassStatus, error)
	// Enroll enrolls the samples (encoded images, in order) into the class.
	Enroll(ctx context.Context, class bws.BCID, job uuid.UUID, samples [][]byte) error
	// Delete deletes the class; a class the centre does not know is not an
	// error.
	Delete(ctx context.Context, class bws.BCID, job uuid.UUID) error
}

// ClassStatus is what the centre tells of a class.
type ClassStatus struct {
	Enrolled bool `json:"e"`
	// Templates counts the class's templates or feature vectors where the
	// protocol tells (BWS 3); -1 when it does not (BWS 2).
	Templates int `json:"n"`
}

// FuncClient is a Client made of functions, for tests. A nil function
// panics.
type FuncClient struct {
	StatusFunc func(ctx context.Context, class bws.BCID) (ClassStatus, error)
	EnrollFunc func(ctx context.Context, class bws.BCID, job uuid.UUID, samples [][]byte) error
	DeleteFunc func(ctx context.Context, class bws.BCID, job uuid.UUID) error
}

func (f *FuncClient) Status(ctx context.Context, c bws.BCID) (ClassStatus, error) {
	return f.StatusFunc(ctx, c)
}
func (f *FuncClient) Enroll(ctx context.Context, c bws.BCID, job uuid.UUID, s [][]byte) error {
	return f.EnrollFunc(ctx, c, job, s)
}
func (f *FuncClient) Delete(ctx context.Context, c bws.BCID, job uuid.UUID) error {
	return f.DeleteFunc(ctx, c, job)
}

// DeliveryError is a failed call to the centre. Permanent errors will fail
// the same way again (the job goes to the dead letters); others are worth
// retrying.
type DeliveryError struct {
	Op        string // "token", "upload", "enroll", "status", "delete"
	Status    int    // HTTP status; 0 for network errors
	Code      string // the centre's error code or message, if any
	Permanent bool
	Err       error // the underlying error, if any
}

func (e *DeliveryError) Error() string {
	s := e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// IsPermanent reports whether err says that retrying cannot help.
func IsPermanent(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent
}

// statusError classifies an HTTP status that is not success.
func statusError(op string, status int, body []byte) *DeliveryError {
	permanent := status >= 400 && status < 500
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, // credentials or clock: the sender's fault, not the job's
		http.StatusRequestTimeout, http.StatusTooManyRequests:
		permanent = false
	}
	return &DeliveryError{Op: op, Status: status, Code: shortBody(body), Permanent: permanent}
}

func shortBody(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		b = b[:200]
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// httpDoer is the shared HTTP plumbing of both protocols.
type httpDoer struct {
	hc *http.Client
	// once sends the calls that must not be repeated (the enroll itself)
	// on a new connection each time: net/http silently replays GETs and
	// requests with an Idempotency-Key header when a reused keep-alive
	// connection breaks, and a replayed enroll either consumes nothing
	// (BWS 2: NotEnoughSamples, a false dead letter) or enrolls twice
	// (BWS 3). The sender's checkpoint handles the doubt instead.
	once    *http.Client
	timeout time.Duration
}

// maxAnswer bounds what is read of an answer: the centre's answers are
// small, and a broken one must not fill memory.
const maxAnswer = 1 << 20

func newHTTPDoer(cfg Config) (*httpDoer, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("'sync.caFile': %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("'sync.caFile' %s: no PEM certificates", cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// A centre that redirects is misconfigured; following would send
		// credentials somewhere unconfigured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	onceTr := tr.Clone()
	onceTr.DisableKeepAlives = true
	once := *hc
	once.Transport = onceTr
	return &httpDoer{hc: hc, once: &once, timeout: cfg.Timeout}, nil
}

// do runs one call under the per-call timeout and returns the status and
// the (bounded) body. Network errors and timeouts are transient
// DeliveryErrors; a canceled ctx is returned as is.
func (h *httpDoer) do(ctx context.Context, op string, req *http.Request) (int, []byte, error) {
	return h.send(ctx, h.hc, op, req)
}

// doOnce is do for a call that must not be replayed.
func (h *httpDoer) doOnce(ctx context.Context, op string, req *http.Request) (int, []byte, error) {
	return h.send(ctx, h.once, op, req)
}

func (h *httpDoer) send(ctx context.Context, hc *http.Client, op string, req *http.Request) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		if cerr := context.Cause(req.Context()); cerr != nil {
			return 0, nil, cerr // the caller gave up: not the centre's fault
		}
		return 0, nil, &DeliveryError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		if cerr := context.Cause(req.Context()); cerr != nil {
			return 0, nil, cerr
		}
		return 0, nil, &DeliveryError{Op: op, Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	return resp.StatusCode, body, nil
}

func (h *httpDoer) close() {
	h.hc.CloseIdleConnections()
	h.once.CloseIdleConnections()
}

// mimeOf names the image type of an encoded sample by its magic bytes.
func mimeOf(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "image/gif"
	case bytes.HasPrefix(b, []byte("BM")):
		return "image/bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "image/tiff"
	}
	return "image/png" // the centre sniffs the payload, as bwsagent does
}

// NewClient builds the client that cfg.Protocol names.
func NewClient(cfg Config) (Client, error) {
	switch cfg.Protocol {
	case ProtocolBWS2:
		return NewBWS2(cfg)
	case ProtocolBWS3:
		return NewBWS3(cfg)
	}
	return nil, fmt.Errorf("'sync.protocol' must be bws2 or bws3 (got %q)", cfg.Protocol)
}
