package session

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bwsagent/bwsagent/agent/bws"
)

// claims are the token claims a session needs. They are read WITHOUT
// verifying the signature: the session only uses them to drive its
// prompts; the service verifies the token on every upload and task call,
// so a forged claim gains nothing.
type claims struct {
	Task      bws.Task
	Challenge bws.Challenge // nil without challenge-response
	BCID      string
}

// ErrBadToken is matched by every token parsing error.
var ErrBadToken = errors.New("malformed BWS token")

const maxTokenLen = 16 << 10

func parseClaims(raw string) (claims, error) {
	if len(raw) > maxTokenLen {
		return claims{}, fmt.Errorf("token too long: %w", ErrBadToken)
	}
	parts := strings.Split(strings.TrimSpace(raw), ".")
	if len(parts) != 3 {
		return claims{}, fmt.Errorf("token has %d parts, want 3: %w", len(parts), ErrBadToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return claims{}, fmt.Errorf("token payload: %w: %w", ErrBadToken, err)
	}
	var p struct {
		Task      json.RawMessage `json:"task"`
		Challenge *string         `json:"challenge"`
		BCID      string          `json:"bcid"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return claims{}, fmt.Errorf("token payload: %w: %w", ErrBadToken, err)
	}
	// Real BWS tokens carry task as a number; accept a numeric string too.
	ts := strings.Trim(string(p.Task), `"`)
	n, err := strconv.Atoi(ts)
	if err != nil {
		return claims{}, fmt.Errorf("token task claim %q: %w", shorten(ts), ErrBadToken)
	}
	c := claims{Task: bws.Task(n), BCID: p.BCID}
	if err := c.Task.Validate(); err != nil {
		return claims{}, fmt.Errorf("token task claim: %w: %w", ErrBadToken, err)
	}
	if p.Challenge != nil && *p.Challenge != "" {
		if c.Challenge, err = bws.DecodeChallenge(*p.Challenge); err != nil {
			return claims{}, fmt.Errorf("token challenge claim: %w: %w", ErrBadToken, err)
		}
	}
	return c, nil
}

func shorten(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
