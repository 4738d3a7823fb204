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
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// BWS3 delivers to BWS 3 REST: POST /api/face/v1/enroll/{classId},
// DELETE /api/face/v1/template/{classId}, GET …/template/status/{classId},
// each with a short-lived JWT signed by the client key. BWS 3 addresses a
// class by its class id alone (the client's registration fixes the
// partition), so only the mapped class id is used.
type BWS3 struct {
	base     *url.URL
	clientID string
	key      []byte
	method   jwt.SigningMethod
	http     *httpDoer
	now      func() time.Time
}

var _ Client = (*BWS3)(nil)

func signingMethod(name string) (jwt.SigningMethod, error) {
	switch name {
	case "", "HS256":
		return jwt.SigningMethodHS256, nil
	case "HS384":
		return jwt.SigningMethodHS384, nil
	case "HS512":
		return jwt.SigningMethodHS512, nil
	}
	return nil, fmt.Errorf("'sync.signingMethod' must be HS256, HS384 or HS512 (got %q)", name)
}

// NewBWS3 builds the client from cfg (URL, ClientID, ClientKey,
// SigningMethod, CAFile, Timeout).
func NewBWS3(cfg Config) (*BWS3, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("'sync.url': %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(cfg.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("'sync.clientKey': %w", err)
	}
	m, err := signingMethod(cfg.SigningMethod)
	if err != nil {
		return nil, err
	}
	h, err := newHTTPDoer(cfg)
	if err != nil {
		return nil, err
	}
	return &BWS3{base: u, clientID: cfg.ClientID, key: key, method: m, http: h, now: time.Now}, nil
}

// Close releases idle connections.
func (c *BWS3) Close() { c.http.close() }

// jwtLifetime is short: a token is made per call.
const jwtLifetime = 5 * time.Minute

func (c *BWS3) call(ctx context.Context, op, method, path string, body any, job uuid.UUID) (int, []byte, error) {
	return c.callWith(ctx, c.http.do, op, method, path, body, job)
}

type sendFunc func(ctx context.Context, op string, req *http.Request) (int, []byte, error)

func (c *BWS3) callWith(ctx context.Context, send sendFunc, op, method, path string, body any, job uuid.UUID) (int, []byte, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), rd)
	if err != nil {
		return 0, nil, err
	}
	now := c.now()
	claims := jwt.RegisteredClaims{
		Issuer:    c.clientID,
		Subject:   c.clientID,
		Audience:  jwt.ClaimStrings{"BWS"},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-30 * time.Second)), // clock skew
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
		ID:        uuid.NewString(),
	}
	tok, err := jwt.NewWithClaims(c.method, claims).SignedString(c.key)
	if err != nil {
		return 0, nil, fmt.Errorf("sign jwt: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if job != uuid.Nil {
		req.Header.Set("Idempotency-Key", job.String())
	}
	return send(ctx, op, req)
}

func classPath(prefix string, class bws.BCID) string {
	return prefix + strconv.FormatInt(class.ClassID, 10)
}

// templateStatus is BWS 3's answer to template/status.
type templateStatus struct {
	Available      bool `json:"available"`
	FeatureVectors int  `json:"featureVectors"`
}

// Status asks template/status; 404 is not enrolled.
func (c *BWS3) Status(ctx context.Context, class bws.BCID) (ClassStatus, error) {
	status, body, err := c.call(ctx, "status", http.MethodGet, classPath("api/face/v1/template/status/", class), nil, uuid.Nil)
	if err != nil {
		return ClassStatus{}, err
	}
	switch status {
	case http.StatusOK:
		var ts templateStatus
		if err := json.Unmarshal(body, &ts); err != nil {
			return ClassStatus{}, &DeliveryError{Op: "status", Status: status, Code: "malformed answer", Err: err}
		}
		if !ts.Available {
			return ClassStatus{Templates: 0}, nil
		}
		return ClassStatus{Enrolled: true, Templates: ts.FeatureVectors}, nil
	case http.StatusNotFound:
		return ClassStatus{Templates: 0}, nil
	}
	return ClassStatus{}, statusError("status", status, body)
}

type imageData struct {
	Image string `json:"image"`
}

// Enroll posts the samples, base64, in order.
func (c *BWS3) Enroll(ctx context.Context, class bws.BCID, job uuid.UUID, samples [][]byte) error {
	imgs := make([]imageData, len(samples))
	for i, s := range samples {
		imgs[i] = imageData{Image: base64.StdEncoding.EncodeToString(s)}
	}
	status, body, err := c.callWith(ctx, c.http.doOnce, "enroll", http.MethodPost, classPath("api/face/v1/enroll/", class), imgs, job)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return statusError("enroll", status, body)
	}
	return nil
}

// Delete deletes the template; 404 counts as done.
func (c *BWS3) Delete(ctx context.Context, class bws.BCID, job uuid.UUID) error {
	status, body, err := c.call(ctx, "delete", http.MethodDelete, classPath("api/face/v1/template/", class), nil, job)
	if err != nil {
		return err
	}
	if status/100 == 2 || status == http.StatusNotFound {
		return nil
	}
	return statusError("delete", status, body)
}
