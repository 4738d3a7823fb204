// Package token issues and validates BWS tokens: HS256 JWTs carrying the
// claims of the BWS 2 extension contract (tokenid, clnt, app, bcid, task,
// traits, challenge, iss "BWS", aud, nbf, exp, iat).
//
// Validation is strict: only HS256 signed with a known key (by "kid"),
// nbf/exp with a small leeway, the exact issuer and audience, and every
// required claim present with the right type. Errors tell a handler which
// status to answer: errors.Is(err, ErrInvalidToken) is 401 (this includes
// ErrExpired and ErrNotYetValid); errors.Is(err, ErrTaskNotAllowed) is 403.
//
// Keys rotate: a Manager signs with its current key and accepts tokens
// signed with the current key or any previous key still configured.
package token

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Defaults and bounds.
const (
	// Issuer is the "iss" claim of every BWS token.
	Issuer = "BWS"
	// DefaultLifetime is BWS's token lifetime: exp = nbf + 600 s.
	DefaultLifetime = 600 * time.Second
	// DefaultLeeway absorbs clock skew between the agent and itself across a
	// restart, or a client that computes nbf on its own clock.
	DefaultLeeway = 5 * time.Second
	// MinKeySize is the shortest accepted HS256 secret (RFC 7518 3.2: a key
	// of the same size as the hash output or larger).
	MinKeySize = 32
	// MaxTokenLen bounds the text handed to the JWT parser. A BWS token with
	// a 15-try challenge is about 1.5 KiB.
	MaxTokenLen = 8 << 10
	// maxKeyIDLen bounds "kid".
	maxKeyIDLen = 64
)

// Errors. Every validation error matches ErrInvalidToken (401) except
// ErrTaskNotAllowed (403), which Claims.Allow returns.
var (
	ErrInvalidToken   = errors.New("invalid token")
	ErrExpired        = fmt.Errorf("%w: expired", ErrInvalidToken)
	ErrNotYetValid    = fmt.Errorf("%w: not yet valid", ErrInvalidToken)
	ErrTaskNotAllowed = errors.New("task not allowed")
	// ErrBadRequest is returned by Issue for a request it cannot turn into a
	// token (the handler answers 400); it wraps the bws parse error if any.
	ErrBadRequest = errors.New("bad token request")
)

// Error carries the reason a token was refused, for logs. Clients get only
// the status.
type Error struct {
	Kind   error // ErrInvalidToken, ErrExpired, ErrNotYetValid or ErrTaskNotAllowed
	Reason string
	Err    error // the underlying cause, if any
}

func (e *Error) Error() string {
	s := "token: " + e.Kind.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is see both the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func invalid(reason string, err error) error {
	return &Error{Kind: ErrInvalidToken, Reason: reason, Err: err}
}

// Key is an HS256 signing key. ID goes into the "kid" header.
type Key struct {
	ID     string
	Secret []byte
}

// Config configures a Manager.
type Config struct {
	// Audience is the "aud" claim: the agent's own base URL, such as
	// "http://127.0.0.1:8080". Tokens for any other audience are refused.
	Audience string
	// Lifetime is exp - nbf; zero means DefaultLifetime.
	Lifetime time.Duration
	// Leeway is the clock skew allowed on nbf, iat and exp; zero means
	// DefaultLeeway, negative means none.
	Leeway time.Duration
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// Rand is the randomness for token ids and challenges; nil means
	// crypto/rand. It must be safe for concurrent use.
	Rand io.Reader
}

// Manager issues and validates tokens. It is safe for concurrent use.
type Manager struct {
	aud      string
	lifetime time.Duration
	leeway   time.Duration
	now      func() time.Time
	rand     io.Reader
	parser   *jwt.Parser
	keys     atomic.Pointer[keyring]
}

type keyring struct {
	current Key
	byID    map[string][]byte
}

// New returns a Manager that signs with current and also accepts tokens
// signed with the previous keys.
func New(cfg Config, current Key, previous ...Key) (*Manager, error) {
	if cfg.Audience == "" {
		return nil, errors.New("token: 'Audience' must be set")
	}
	if cfg.Lifetime < 0 {
		return nil, errors.New("token: 'Lifetime' must not be negative")
	}
	m := &Manager{
		aud:      cfg.Audience,
		lifetime: cfg.Lifetime,
		leeway:   cfg.Leeway,
		now:      cfg.Now,
		rand:     cfg.Rand,
	}
	if m.lifetime == 0 {
		m.lifetime = DefaultLifetime
	}
	switch {
	case m.leeway == 0:
		m.leeway = DefaultLeeway
	case m.leeway < 0:
		m.leeway = 0
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	m.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(m.aud),
		jwt.WithLeeway(m.leeway),
		jwt.WithTimeFunc(m.now),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	if err := m.SetKeys(current, previous...); err != nil {
		return nil, err
	}
	return m, nil
}

// SetKeys replaces the keys: new tokens are signed with current, tokens
// signed with current or any of previous validate. Keep a rotated-out key
// among previous for at least the token lifetime.
func (m *Manager) SetKeys(current Key, previous ...Key) error {
	kr := &keyring{byID: make(map[string][]byte, 1+len(previous))}
	for i, k := range append([]Key{current}, previous...) {
		if err := checkKey(k); err != nil {
			return err
		}
		if _, dup := kr.byID[k.ID]; dup {
			return fmt.Errorf("token: duplicate key id %q", k.ID)
		}
		secret := append([]byte(nil), k.Secret...) // callers may reuse their slice
		kr.byID[k.ID] = secret
		if i == 0 {
			kr.current = Key{ID: k.ID, Secret: secret}
		}
	}
	m.keys.Store(kr)
	return nil
}

func checkKey(k Key) error {
	if k.ID == "" || len(k.ID) > maxKeyIDLen {
		return fmt.Errorf("token: key id must be 1..%d bytes", maxKeyIDLen)
	}
	for i := 0; i < len(k.ID); i++ {
		if k.ID[i] < 0x21 || k.ID[i] > 0x7e {
			return fmt.Errorf("token: key id %q must be printable ASCII", k.ID)
		}
	}
	if len(k.Secret) < MinKeySize {
		return fmt.Errorf("token: key %q: secret must be at least %d bytes", k.ID, MinKeySize)
	}
	return nil
}

// Request describes the token to issue.
type Request struct {
	App    string // app id, "app"
	Client string // display name, "clnt"; the app id when empty
	// BCID is required except for livenessdetection tasks.
	BCID bws.BCID
	// Task is built with bws.NewTask.
	Task bws.Task
	// Traits defaults to bws.TraitFace.
	Traits bws.Traits
	// Challenge is used for challenge-response tasks: one array per try.
	// When nil, Issue generates one with ChallengeLen directions per try
	// (bws.DefaultChallengeLen when 0).
	Challenge    bws.Challenge
	ChallengeLen int
}

// Claims are the validated contents of a token.
type Claims struct {
	TokenID   string // "tokenid", a canonical GUID
	Client    string // "clnt"
	App       string // "app"
	BCID      bws.BCID
	Task      bws.Task
	Traits    bws.Traits
	Challenge bws.Challenge // nil unless Task.ChallengeResponse()
	Issuer    string
	Audience  string
	NotBefore time.Time
	Expires   time.Time
	IssuedAt  time.Time
	KeyID     string // "kid" header
}

// Allow returns nil if the token grants op, or an error matching
// ErrTaskNotAllowed (403): an enroll token cannot verify, only a
// livenessdetection (LiveOnly) token can call /livenessdetection.
func (c *Claims) Allow(op bws.Operation) error {
	if got := c.Task.Operation(); got != op {
		return &Error{Kind: ErrTaskNotAllowed, Reason: fmt.Sprintf("token grants %v, not %v", got, op)}
	}
	return nil
}

// wireClaims is the JSON payload. Required claims are pointers so that a
// missing claim is told apart from a zero value. aud is a plain string as
// BWS sends it; an array there is refused as a type error.
type wireClaims struct {
	TokenID   *string          `json:"tokenid"`
	Client    *string          `json:"clnt"`
	App       *string          `json:"app"`
	BCID      *string          `json:"bcid,omitempty"`
	Task      *int64           `json:"task"`
	Traits    *int64           `json:"traits"`
	Challenge *string          `json:"challenge,omitempty"`
	Issuer    string           `json:"iss"`
	Audience  string           `json:"aud"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Expires   *jwt.NumericDate `json:"exp"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
}

func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return w.Expires, nil }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return w.IssuedAt, nil }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return w.NotBefore, nil }
func (w *wireClaims) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wireClaims) GetSubject() (string, error)                  { return "", nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	if w.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{w.Audience}, nil
}

// Issue signs a new token for req with the current key and returns it with
// its claims. Errors match ErrBadRequest.
func (m *Manager) Issue(req Request) (string, *Claims, error) {
	bad := func(reason string, err error) (string, *Claims, error) {
		if err != nil {
			return "", nil, fmt.Errorf("token: %w: %s: %w", ErrBadRequest, reason, err)
		}
		return "", nil, fmt.Errorf("token: %w: %s", ErrBadRequest, reason)
	}
	if req.App == "" {
		return bad("no app id", nil)
	}
	if err := req.Task.Validate(); err != nil {
		return bad("task", err)
	}
	if req.Traits == 0 {
		req.Traits = bws.TraitFace
	}
	if err := req.Traits.Validate(); err != nil {
		return bad("traits", err)
	}
	if req.BCID.IsZero() {
		if req.Task.Operation() != bws.OpLivenessDetection {
			return bad("a BCID is required", nil)
		}
	} else if err := req.BCID.Validate(); err != nil {
		return bad("bcid", err)
	}
	if req.Client == "" {
		req.Client = req.App
	}

	c := &Claims{
		Client: req.Client,
		App:    req.App,
		BCID:   req.BCID,
		Task:   req.Task,
		Traits: req.Traits,
	}
	if req.Task.ChallengeResponse() {
		c.Challenge = req.Challenge
		if c.Challenge == nil {
			n := req.ChallengeLen
			if n == 0 {
				n = bws.DefaultChallengeLen
			}
			var err error
			if c.Challenge, err = bws.NewChallenge(m.rand, req.Task.MaxTries(), n); err != nil {
				return bad("challenge", err)
			}
		}
		if err := checkChallenge(c.Challenge, req.Task); err != nil {
			return bad("challenge", err)
		}
	} else if req.Challenge != nil {
		return bad("a challenge needs a challenge-response task", nil)
	}

	id, err := uuid.NewRandomFromReader(m.rand)
	if err != nil {
		return "", nil, fmt.Errorf("token: token id: %w", err)
	}
	c.TokenID = id.String()
	// Whole seconds in UTC, so the returned claims equal the validated ones.
	now := time.Unix(m.now().Unix(), 0).UTC()
	c.Issuer, c.Audience = Issuer, m.aud
	c.NotBefore, c.IssuedAt, c.Expires = now, now, now.Add(m.lifetime)

	w := &wireClaims{
		TokenID:   &c.TokenID,
		Client:    &c.Client,
		App:       &c.App,
		Issuer:    c.Issuer,
		Audience:  c.Audience,
		NotBefore: jwt.NewNumericDate(c.NotBefore),
		Expires:   jwt.NewNumericDate(c.Expires),
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
	}
	task, traits := int64(c.Task), int64(c.Traits)
	w.Task, w.Traits = &task, &traits
	if !c.BCID.IsZero() {
		s := c.BCID.String()
		w.BCID = &s
	}
	if c.Challenge != nil {
		s, err := c.Challenge.Encode()
		if err != nil {
			return bad("challenge", err)
		}
		w.Challenge = &s
	}

	key := m.keys.Load().current
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, w)
	t.Header["kid"] = key.ID
	c.KeyID = key.ID
	s, err := t.SignedString(key.Secret)
	if err != nil {
		return "", nil, fmt.Errorf("token: sign: %w", err)
	}
	return s, c, nil
}

// checkChallenge requires one array per try.
func checkChallenge(ch bws.Challenge, task bws.Task) error {
	if err := ch.Validate(); err != nil {
		return err
	}
	if len(ch) != task.MaxTries() {
		return fmt.Errorf("%d challenge arrays for %d tries: %w", len(ch), task.MaxTries(), bws.ErrInvalidChallenge)
	}
	return nil
}

// Validate parses and checks a token. It does not check the task against an
// endpoint (see Claims.Allow) nor the tries used (kept in the store).
func (m *Manager) Validate(raw string) (*Claims, error) {
	if raw == "" {
		return nil, invalid("empty", nil)
	}
	if len(raw) > MaxTokenLen {
		return nil, invalid("too long", nil)
	}
	kr := m.keys.Load()
	var w wireClaims
	var kid string
	_, err := m.parser.ParseWithClaims(raw, &w, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refused other algorithms; this guards
		// against a future edit of the option list (alg confusion).
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		id, ok := t.Header["kid"].(string)
		if !ok {
			return nil, errors.New("no key id")
		}
		secret, ok := kr.byID[id]
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", shorten(id))
		}
		kid = id
		return secret, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, &Error{Kind: ErrExpired, Err: err}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, &Error{Kind: ErrNotYetValid, Err: err}
	default:
		return nil, invalid("", err)
	}
	c, err := w.claims()
	if err != nil {
		return nil, err
	}
	c.KeyID = kid
	return c, nil
}

// claims checks the application claims of a signed, time-valid token.
func (w *wireClaims) claims() (*Claims, error) {
	missing := func(name string) (*Claims, error) {
		return nil, invalid("missing claim "+name, jwt.ErrTokenRequiredClaimMissing)
	}
	switch {
	case w.TokenID == nil:
		return missing("tokenid")
	case w.Client == nil:
		return missing("clnt")
	case w.App == nil:
		return missing("app")
	case w.Task == nil:
		return missing("task")
	case w.Traits == nil:
		return missing("traits")
	case w.IssuedAt == nil:
		return missing("iat")
	}
	c := &Claims{
		Client:    *w.Client,
		App:       *w.App,
		Issuer:    w.Issuer,
		Audience:  w.Audience,
		NotBefore: w.NotBefore.UTC(),
		Expires:   w.Expires.UTC(),
		IssuedAt:  w.IssuedAt.UTC(),
	}
	id, err := uuid.Parse(*w.TokenID)
	if err != nil || id.String() != *w.TokenID {
		// Only the canonical form: the id keys the token's state.
		return nil, invalid("tokenid is not a canonical GUID", nil)
	}
	c.TokenID = *w.TokenID
	if c.App == "" {
		return nil, invalid("empty app", nil)
	}
	if *w.Task < 0 || *w.Task > math.MaxInt32 {
		return nil, invalid("task out of range", nil)
	}
	c.Task = bws.Task(*w.Task)
	if err := c.Task.Validate(); err != nil {
		return nil, invalid("", err)
	}
	if *w.Traits < 0 || *w.Traits > math.MaxInt32 {
		return nil, invalid("traits out of range", nil)
	}
	c.Traits = bws.Traits(*w.Traits)
	if err := c.Traits.Validate(); err != nil {
		return nil, invalid("", err)
	}
	switch {
	case w.BCID != nil:
		if c.BCID, err = bws.ParseBCID(*w.BCID); err != nil {
			return nil, invalid("", err)
		}
	case c.Task.Operation() != bws.OpLivenessDetection:
		return missing("bcid")
	}
	switch {
	case c.Task.ChallengeResponse() && w.Challenge == nil:
		return missing("challenge")
	case c.Task.ChallengeResponse():
		if c.Challenge, err = bws.DecodeChallenge(*w.Challenge); err != nil {
			return nil, invalid("", err)
		}
		if err := checkChallenge(c.Challenge, c.Task); err != nil {
			return nil, invalid("", err)
		}
	case w.Challenge != nil:
		return nil, invalid("challenge without challenge-response task", nil)
	}
	if !c.Expires.After(c.NotBefore) {
		return nil, invalid("exp not after nbf", nil)
	}
	return c, nil
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// compile-time check: the payload type satisfies jwt.Claims.
var _ jwt.Claims = (*wireClaims)(nil)
