package outbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/google/uuid"
)

// BWS2 delivers to a BWS 2 extension endpoint: an enrollment is a token
// for task enroll (challenge=false: liveness was decided on the device),
// one /upload per sample in order, then /enroll.
type BWS2 struct {
	base          *url.URL
	appID, secret string
	liveDetection bool
	http          *httpDoer
}

var _ Client = (*BWS2)(nil)

// NewBWS2 builds the client from cfg (URL, AppID, AppSecret,
// LiveDetection, CAFile, Timeout).
func NewBWS2(cfg Config) (*BWS2, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("'sync.url': %w", err)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	h, err := newHTTPDoer(cfg)
	if err != nil {
		return nil, err
	}
	return &BWS2{base: u, appID: cfg.AppID, secret: cfg.AppSecret, liveDetection: cfg.LiveDetection, http: h}, nil
}

// Close releases idle connections.
func (c *BWS2) Close() { c.http.close() }

func (c *BWS2) request(ctx context.Context, method, route string, q url.Values, body []byte, job uuid.UUID) (*http.Request, error) {
	u := c.base.JoinPath(route)
	u.RawQuery = q.Encode()
	var r *bytes.Reader
	if body != nil {
		r = bytes.NewReader(body)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	if job != uuid.Nil {
		req.Header.Set("Idempotency-Key", job.String())
	}
	return req, nil
}

func (c *BWS2) basic(ctx context.Context, op, method, route string, q url.Values, job uuid.UUID) (int, []byte, error) {
	req, err := c.request(ctx, method, route, q, nil, job)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(c.appID, c.secret)
	return c.http.do(ctx, op, req)
}

// Status asks /isenrolled (200 enrolled, 404 not).
func (c *BWS2) Status(ctx context.Context, class bws.BCID) (ClassStatus, error) {
	status, body, err := c.basic(ctx, "isenrolled", http.MethodGet, "isenrolled",
		url.Values{"bcid": {class.String()}, "trait": {"Face"}}, uuid.Nil)
	if err != nil {
		return ClassStatus{}, err
	}
	switch status {
	case http.StatusOK:
		return ClassStatus{Enrolled: true, Templates: -1}, nil
	case http.StatusNotFound:
		return ClassStatus{Templates: -1}, nil
	}
	return ClassStatus{}, statusError("isenrolled", status, body)
}

// bwsResult is the answer of /enroll and friends.
type bwsResult struct {
	Success bool   `json:"Success"`
	Error   string `json:"Error"`
}

type uploadResult struct {
	Accepted bool     `json:"Accepted"`
	Error    string   `json:"Error"`
	Warnings []string `json:"Warnings"`
}

// transientCodes are BWS error codes that may pass on a retry.
var transientCodes = map[string]bool{"ExecutionOfJobTimedOut": true}

// Enroll gets an enroll token, uploads the samples in order and enrolls.
// Samples the centre does not accept are skipped; if none is left /enroll
// answers NotEnoughSamples, a permanent error.
func (c *BWS2) Enroll(ctx context.Context, class bws.BCID, job uuid.UUID, samples [][]byte) error {
	status, body, err := c.basic(ctx, "token", http.MethodGet, "token", url.Values{
		"id": {c.appID}, "bcid": {class.String()}, "task": {"enroll"},
		"livedetection": {strconv.FormatBool(c.liveDetection)}, "challenge": {"false"},
	}, job)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return statusError("token", status, body)
	}
	token := string(bytes.TrimSpace(body))
	if token == "" || strings.ContainsAny(token, " \r\n") {
		return &DeliveryError{Op: "token", Status: status, Code: "malformed token"}
	}
	for i, s := range samples {
		dataURL := make([]byte, 0, 32+base64.StdEncoding.EncodedLen(len(s)))
		dataURL = append(dataURL, "data:"+mimeOf(s)+";base64,"...)
		dataURL = base64.StdEncoding.AppendEncode(dataURL, s)
		req, err := c.request(ctx, http.MethodPost, "upload", url.Values{"index": {strconv.Itoa(i)}, "tag": {"any"}}, dataURL, job)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/plain")
		status, body, err := c.http.do(ctx, "upload", req)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return statusError("upload", status, body)
		}
		var ur uploadResult
		if err := json.Unmarshal(body, &ur); err != nil {
			return &DeliveryError{Op: "upload", Status: status, Code: "malformed answer", Err: err}
		}
		// A sample the centre rejects (NoFaceFound, …) is left out; the
		// enroll below decides whether the rest suffice.
	}
	req, err := c.request(ctx, http.MethodGet, "enroll", nil, nil, job)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	status, body, err = c.http.doOnce(ctx, "enroll", req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return statusError("enroll", status, body)
	}
	var res bwsResult
	if err := json.Unmarshal(body, &res); err != nil {
		return &DeliveryError{Op: "enroll", Status: status, Code: "malformed answer", Err: err}
	}
	if !res.Success {
		code := res.Error
		if code == "" {
			code = "Success false"
		}
		return &DeliveryError{Op: "enroll", Status: status, Code: code, Permanent: !transientCodes[res.Error]}
	}
	return nil
}

// Delete calls /deleteclass; 404 (a class the centre never had, or a
// re-delivered delete) counts as done.
func (c *BWS2) Delete(ctx context.Context, class bws.BCID, job uuid.UUID) error {
	status, body, err := c.basic(ctx, "deleteclass", http.MethodDelete, "deleteclass", url.Values{"bcid": {class.String()}}, job)
	if err != nil {
		return err
	}
	if status == http.StatusOK || status == http.StatusNotFound || status == http.StatusNoContent {
		return nil
	}
	return statusError("deleteclass", status, body)
}
