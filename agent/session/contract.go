package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"

	"github.com/bwsagent/bwsagent/agent/bws"
)

// ContractClient implements BWS and TokenIssuer by calling the BWS
// extension routes (/token, /upload, /enroll, …) — over the network, or in
// process with HandlerTransport so that sessions run exactly the code of
// the agent's own /upload and task handlers.
type ContractClient struct {
	// BaseURL is the extension base, e.g. "http://localhost/extension/".
	BaseURL string
	// Client; nil is http.DefaultClient.
	Client *http.Client
}

// StatusError is a non-200 answer of the service.
type StatusError struct {
	Route   string
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Route, e.Status, e.Message)
}

const maxAnswer = 1 << 20

func (c ContractClient) do(ctx context.Context, method, route string, q url.Values, auth string, body []byte, out any) ([]byte, error) {
	u := strings.TrimRight(c.BaseURL, "/") + "/" + route
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", route, err)
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "text/plain") // raw data URL, never form-encoded
	}
	cl := c.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", route, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", route, err)
	}
	if resp.StatusCode != http.StatusOK {
		var m struct{ Message string }
		_ = json.Unmarshal(b, &m)
		if m.Message == "" {
			m.Message = http.StatusText(resp.StatusCode)
		}
		return nil, &StatusError{Route: route, Status: resp.StatusCode, Message: m.Message}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s: decode answer: %w", route, err)
		}
	}
	return b, nil
}

// Token calls GET /token with Basic credentials.
func (c ContractClient) Token(ctx context.Context, r TokenRequest) (string, error) {
	q := url.Values{"id": {r.AppID}, "task": {r.Op.String()}, "livedetection": {strconv.FormatBool(r.LiveDetection)},
		"challenge": {strconv.FormatBool(r.Challenge)}}
	if r.BCID != "" {
		q.Set("bcid", r.BCID)
	}
	if r.MaxTries > 0 {
		q.Set("maxtries", strconv.Itoa(r.MaxTries))
	}
	if r.Challenges > 0 {
		q.Set("challenges", strconv.Itoa(r.Challenges))
	}
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(r.AppID, r.AppSecret)
	b, err := c.do(ctx, http.MethodGet, "token", q, req.Header.Get("Authorization"), nil, nil)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Upload calls POST /upload with the raw data URL.
func (c ContractClient) Upload(ctx context.Context, token string, dataURL []byte, tag string, index int) (UploadResult, error) {
	var out UploadResult
	q := url.Values{"tag": {tag}, "index": {strconv.Itoa(index)}}
	_, err := c.do(ctx, http.MethodPost, "upload", q, "Bearer "+token, dataURL, &out)
	return out, err
}

// Perform calls the task route (/enroll, /verify, /identify,
// /livenessdetection).
func (c ContractClient) Perform(ctx context.Context, token string, op bws.Operation) (Result, error) {
	var out Result
	_, err := c.do(ctx, http.MethodGet, op.String(), nil, "Bearer "+token, nil, &out)
	return out, err
}

// HandlerTransport is an http.RoundTripper that serves requests with h in
// process: no socket, the same handlers, middleware and limits as a
// network call. Requests get Host "localhost".
func HandlerTransport(h http.Handler) http.RoundTripper { return handlerTransport{h} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Host = "localhost"
	r.RemoteAddr = "127.0.0.1:0"
	r.RequestURI = r.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
