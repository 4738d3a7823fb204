package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/golang-jwt/jwt/v5"
)

const testAud = "http://127.0.0.1:8080"

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// clock is a fake clock; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func testKey(id string) Key {
	s := sha256.Sum256([]byte("secret of " + id))
	return Key{ID: id, Secret: s[:]}
}

func newTestManager(t testing.TB, clk *clock, keys ...Key) *Manager {
	t.Helper()
	if len(keys) == 0 {
		keys = []Key{testKey("k1")}
	}
	m, err := New(Config{Audience: testAud, Now: clk.Now}, keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustTask(t testing.TB, op bws.Operation, tries int, flags bws.Task) bws.Task {
	t.Helper()
	task, err := bws.NewTask(op, tries, flags)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// validClaims is the payload of a good verify token issued at t0.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"tokenid": "0f8fad5b-d9cb-469f-a165-70867728950e",
		"clnt":    "Kiosk",
		"app":     "app1",
		"bcid":    "bws/12/4711",
		"task":    259,
		"traits":  1,
		"iss":     "BWS",
		"aud":     testAud,
		"nbf":     t0.Unix(),
		"exp":     t0.Add(600 * time.Second).Unix(),
		"iat":     t0.Unix(),
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func without(c jwt.MapClaims, name string) jwt.MapClaims {
	out := with(c)
	delete(out, name)
	return out
}

// sign signs claims with method and key, setting kid unless kid is nil.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != nil {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs256(t testing.TB, claims jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodHS256, testKey("k1").Secret, "k1", claims)
}

func segment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIssue(t *testing.T) {
	clk := &clock{t: t0.Add(300 * time.Millisecond)}
	m := newTestManager(t, clk)
	raw, c, err := m.Issue(Request{
		App: "app1", Client: "Kiosk",
		BCID: bws.BCID{Storage: "bws", Partition: 12, ClassID: 4711},
		Task: mustTask(t, bws.OpVerify, 3, bws.TaskLiveDetection),
	})
	if err != nil {
		t.Fatal(err)
	}

	h := segment(t, raw, 0)
	if h["alg"] != "HS256" || h["kid"] != "k1" || h["typ"] != "JWT" {
		t.Errorf("header = %v", h)
	}
	p := segment(t, raw, 1)
	var names []string
	for k := range p {
		names = append(names, k)
	}
	slices.Sort(names)
	want := []string{"app", "aud", "bcid", "clnt", "exp", "iat", "iss", "nbf", "task", "tokenid", "traits"}
	if !slices.Equal(names, want) {
		t.Errorf("claims %v, want %v", names, want)
	}
	checks := map[string]any{
		"app": "app1", "clnt": "Kiosk", "bcid": "bws/12/4711", "task": 259.0, "traits": 1.0,
		"iss": "BWS", "aud": testAud,
		"nbf": float64(t0.Unix()), "iat": float64(t0.Unix()), "exp": float64(t0.Unix() + 600),
	}
	for k, v := range checks {
		if p[k] != v {
			t.Errorf("claim %s = %#v, want %#v", k, p[k], v)
		}
	}

	got, err := m.Validate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Validate = %+v\nIssue    = %+v", got, c)
	}
	if got.TokenID != p["tokenid"] || len(got.TokenID) != 36 {
		t.Errorf("tokenid %q", got.TokenID)
	}
	if got.Expires.Sub(got.NotBefore) != DefaultLifetime {
		t.Errorf("lifetime %v", got.Expires.Sub(got.NotBefore))
	}

	// Token ids are unique.
	raw2, c2, err := m.Issue(Request{App: "app1", BCID: c.BCID, Task: c.Task})
	if err != nil || raw2 == raw || c2.TokenID == c.TokenID {
		t.Fatalf("second token: %v, same id %v", err, c2.TokenID == c.TokenID)
	}
	if c2.Client != "app1" || c2.Traits != bws.TraitFace {
		t.Errorf("defaults: clnt %q traits %v", c2.Client, c2.Traits)
	}
}

func TestIssueLifetime(t *testing.T) {
	clk := &clock{t: t0}
	m, err := New(Config{Audience: testAud, Now: clk.Now, Lifetime: time.Minute}, testKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, c, err := m.Issue(Request{App: "a", BCID: bws.BCID{Storage: "s"}, Task: mustTask(t, bws.OpEnroll, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if p := segment(t, raw, 1); p["exp"].(float64)-p["nbf"].(float64) != 60 {
		t.Errorf("exp-nbf = %v", p["exp"].(float64)-p["nbf"].(float64))
	}
	clk.Set(c.Expires.Add(DefaultLeeway))
	if _, err := m.Validate(raw); !errors.Is(err, ErrExpired) {
		t.Errorf("after lifetime: %v", err)
	}
}

func TestIssueChallenge(t *testing.T) {
	clk := &clock{t: t0}
	m, err := New(Config{Audience: testAud, Now: clk.Now, Rand: mrand.NewChaCha8([32]byte{7})}, testKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	task := mustTask(t, bws.OpVerify, 2, bws.TaskLiveDetection|bws.TaskChallengeResponse)
	raw, c, err := m.Issue(Request{App: "a", BCID: bws.BCID{Storage: "bws", Partition: 1, ClassID: 2}, Task: task, ChallengeLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Challenge) != 2 || len(c.Challenge[0]) != 4 || len(c.Challenge[1]) != 4 {
		t.Fatalf("challenge %v", c.Challenge)
	}
	claim, ok := segment(t, raw, 1)["challenge"].(string)
	if !ok {
		t.Fatalf("challenge claim is not a string: %#v", segment(t, raw, 1)["challenge"])
	}
	var arrays [][]string
	if err := json.Unmarshal([]byte(claim), &arrays); err != nil || len(arrays) != 2 {
		t.Fatalf("challenge claim %q: %v", claim, err)
	}
	if arrays[0][1] != c.Challenge[0][1].String() {
		t.Errorf("claim %q vs %v", claim, c.Challenge)
	}
	got, err := m.Validate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Challenge, c.Challenge) {
		t.Errorf("validated challenge %v, issued %v", got.Challenge, c.Challenge)
	}

	// A given challenge is used as is.
	given := bws.Challenge{{bws.Left, bws.Right, bws.Down}, {bws.Up, bws.Down, bws.Left}}
	raw, _, err = m.Issue(Request{App: "a", BCID: bws.BCID{Storage: "bws"}, Task: task, Challenge: given})
	if err != nil {
		t.Fatal(err)
	}
	if s := segment(t, raw, 1)["challenge"]; s != `[["left","right","down"],["up","down","left"]]` {
		t.Errorf("challenge claim %v", s)
	}
}

func TestIssueErrors(t *testing.T) {
	m := newTestManager(t, &clock{t: t0})
	b := bws.BCID{Storage: "bws", Partition: 1, ClassID: 2}
	verify := mustTask(t, bws.OpVerify, 3, 0)
	cr := mustTask(t, bws.OpVerify, 2, bws.TaskLiveDetection|bws.TaskChallengeResponse)
	tests := []struct {
		name string
		req  Request
	}{
		{"no app", Request{BCID: b, Task: verify}},
		{"invalid task", Request{App: "a", BCID: b, Task: 0x33}},
		{"no tries", Request{App: "a", BCID: b, Task: bws.TaskEnroll}},
		{"no bcid", Request{App: "a", Task: verify}},
		{"bad bcid", Request{App: "a", BCID: bws.BCID{Storage: "a.b"}, Task: verify}},
		{"bad traits", Request{App: "a", BCID: b, Task: verify, Traits: 8}},
		{"challenge without task bit", Request{App: "a", BCID: b, Task: verify, Challenge: bws.Challenge{{bws.Up, bws.Down}}}},
		{"one array for two tries", Request{App: "a", BCID: b, Task: cr, Challenge: bws.Challenge{{bws.Up, bws.Down}}}},
		{"challenge too long", Request{App: "a", BCID: b, Task: cr, ChallengeLen: 8}},
	}
	for _, tt := range tests {
		if _, _, err := m.Issue(tt.req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", tt.name, err)
		}
	}
	// A livenessdetection token needs no BCID.
	raw, c, err := m.Issue(Request{App: "a", Task: mustTask(t, bws.OpLivenessDetection, 3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := segment(t, raw, 1)["bcid"]; ok || !c.BCID.IsZero() {
		t.Error("livenessdetection token carries a bcid")
	}
	if _, err := m.Validate(raw); err != nil {
		t.Error(err)
	}
}

func TestValidateRejects(t *testing.T) {
	k1 := testKey("k1")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := hs256(t, validClaims())
	parts := strings.Split(good, ".")
	tamperedPayload := func() string {
		b, _ := json.Marshal(with(validClaims(), "task", 291))
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}()
	tamperedSig := func() string {
		s := []byte(parts[2])
		s[10] ^= 'A' ^ 'B'
		if s[10] == parts[2][10] {
			s[10] = 'C'
		}
		return parts[0] + "." + parts[1] + "." + string(s)
	}()
	noneToken := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", validClaims())
	crClaims := with(validClaims(), "task", 0x302, "challenge", `[["left","right","down"],["up","down","left"]]`)

	exp := t0.Add(DefaultLifetime)
	tests := []struct {
		name string
		tok  string
		at   time.Time
		want error // nil: valid
	}{
		{"valid", good, t0, nil},
		{"valid just before exp+leeway", good, exp.Add(DefaultLeeway - time.Second), nil},
		{"valid within nbf leeway", good, t0.Add(-DefaultLeeway + time.Second), nil},
		{"valid challenge-response", hs256(t, crClaims), t0, nil},
		{"valid livenessdetection without bcid", hs256(t, without(with(validClaims(), "task", 0x183), "bcid")), t0, nil},

		{"expired", good, exp.Add(DefaultLeeway), ErrExpired},
		{"long expired", good, exp.Add(24 * time.Hour), ErrExpired},
		{"not yet valid", good, t0.Add(-DefaultLeeway - time.Second), ErrNotYetValid},
		{"iat in the future", hs256(t, with(validClaims(), "iat", t0.Add(time.Hour).Unix())), t0, ErrNotYetValid},
		{"wrong audience", hs256(t, with(validClaims(), "aud", "https://bws.bioid.com")), t0, ErrInvalidToken},
		{"audience array", hs256(t, with(validClaims(), "aud", []string{testAud})), t0, ErrInvalidToken},
		{"wrong issuer", hs256(t, with(validClaims(), "iss", "BWS3")), t0, ErrInvalidToken},
		{"alg none", noneToken, t0, ErrInvalidToken},
		{"alg none unsigned", parts[0] + "." + parts[1] + ".", t0, ErrInvalidToken},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, "k1", validClaims()), t0, ErrInvalidToken},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, "k1", validClaims()), t0, ErrInvalidToken},
		{"HS384 same secret", sign(t, jwt.SigningMethodHS384, k1.Secret, "k1", validClaims()), t0, ErrInvalidToken},
		{"HS512 same secret", sign(t, jwt.SigningMethodHS512, k1.Secret, "k1", validClaims()), t0, ErrInvalidToken},
		{"other secret", sign(t, jwt.SigningMethodHS256, testKey("k2").Secret, "k1", validClaims()), t0, ErrInvalidToken},
		{"tampered payload", tamperedPayload, t0, ErrInvalidToken},
		{"tampered signature", tamperedSig, t0, ErrInvalidToken},
		{"unknown kid", sign(t, jwt.SigningMethodHS256, k1.Secret, "k9", validClaims()), t0, ErrInvalidToken},
		{"no kid", sign(t, jwt.SigningMethodHS256, k1.Secret, nil, validClaims()), t0, ErrInvalidToken},
		{"numeric kid", sign(t, jwt.SigningMethodHS256, k1.Secret, 1, validClaims()), t0, ErrInvalidToken},
		{"empty", "", t0, ErrInvalidToken},
		{"garbage", "not.a.token", t0, ErrInvalidToken},
		{"two segments", parts[0] + "." + parts[1], t0, ErrInvalidToken},
		{"too long", good + strings.Repeat("A", MaxTokenLen), t0, ErrInvalidToken},

		{"tokenid not a GUID", hs256(t, with(validClaims(), "tokenid", "42")), t0, ErrInvalidToken},
		{"tokenid not canonical", hs256(t, with(validClaims(), "tokenid", "{0F8FAD5B-D9CB-469F-A165-70867728950E}")), t0, ErrInvalidToken},
		{"empty app", hs256(t, with(validClaims(), "app", "")), t0, ErrInvalidToken},
		{"bad bcid", hs256(t, with(validClaims(), "bcid", "bws.x.1")), t0, ErrInvalidToken},
		{"invalid task bits", hs256(t, with(validClaims(), "task", 0x43)), t0, ErrInvalidToken},
		{"task out of range", hs256(t, with(validClaims(), "task", int64(1)<<40)), t0, ErrInvalidToken},
		{"no traits", hs256(t, with(validClaims(), "traits", 0)), t0, ErrInvalidToken},
		{"challenge on a plain task", hs256(t, with(validClaims(), "challenge", `[["up","down"]]`)), t0, ErrInvalidToken},
		{"challenge arrays != tries", hs256(t, with(crClaims, "challenge", `[["up","down"]]`)), t0, ErrInvalidToken},
		{"challenge garbage", hs256(t, with(crClaims, "challenge", `[["up","sideways"]]`)), t0, ErrInvalidToken},
		{"exp before nbf", hs256(t, with(validClaims(), "nbf", t0.Add(-time.Minute).Unix(), "exp", t0.Add(-2*time.Minute).Unix())), t0, ErrExpired},

		{"exp equals nbf", hs256(t, with(validClaims(), "nbf", t0.Add(time.Second).Unix(), "exp", t0.Add(time.Second).Unix())), t0, ErrInvalidToken},

		{"task as string", hs256(t, with(validClaims(), "task", "259")), t0, ErrInvalidToken},
		{"task as float", hs256(t, with(validClaims(), "task", 259.5)), t0, ErrInvalidToken},
		{"traits as name", hs256(t, with(validClaims(), "traits", "Face")), t0, ErrInvalidToken},
		{"bcid as number", hs256(t, with(validClaims(), "bcid", 4711)), t0, ErrInvalidToken},
		{"tokenid as number", hs256(t, with(validClaims(), "tokenid", 12)), t0, ErrInvalidToken},
		{"app null", hs256(t, with(validClaims(), "app", nil)), t0, ErrInvalidToken},
		{"challenge as array", hs256(t, with(crClaims, "challenge", []any{[]string{"up", "down"}, []string{"up", "down"}})), t0, ErrInvalidToken},
		{"exp as string", hs256(t, with(validClaims(), "exp", "soon")), t0, ErrInvalidToken},
	}
	for _, name := range []string{"tokenid", "clnt", "app", "bcid", "task", "traits", "iss", "aud", "nbf", "exp", "iat"} {
		tests = append(tests, struct {
			name string
			tok  string
			at   time.Time
			want error
		}{"missing " + name, hs256(t, without(validClaims(), name)), t0, ErrInvalidToken})
	}
	tests = append(tests, struct {
		name string
		tok  string
		at   time.Time
		want error
	}{"missing challenge", hs256(t, without(crClaims, "challenge")), t0, ErrInvalidToken})

	clk := &clock{}
	m := newTestManager(t, clk)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Set(tt.at)
			c, err := m.Validate(tt.tok)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %+v, %v; want %v", c, err, tt.want)
			}
			t.Log(err)
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrTaskNotAllowed) {
				t.Fatalf("%v must be a 401 error", err)
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("%v is not a *token.Error", err)
			}
		})
	}
}

func TestAllow(t *testing.T) {
	tests := []struct {
		task bws.Task
		op   bws.Operation
		ok   bool
	}{
		{259, bws.OpVerify, true},
		{259, bws.OpEnroll, false},
		{259, bws.OpIdentify, false},
		{259, bws.OpLivenessDetection, false},
		{291, bws.OpEnroll, true},
		{291, bws.OpVerify, false},
		{0x113, bws.OpIdentify, true},
		{0x113, bws.OpVerify, false},
		{0x183, bws.OpLivenessDetection, true},
		{0x183, bws.OpVerify, false},
		{0x1103, bws.OpVerify, true},
		{0x1103, bws.OpEnroll, false},
	}
	for _, tt := range tests {
		err := (&Claims{Task: tt.task}).Allow(tt.op)
		if tt.ok != (err == nil) {
			t.Errorf("Task(%#x).Allow(%v) = %v", int(tt.task), tt.op, err)
		}
		if err != nil && (!errors.Is(err, ErrTaskNotAllowed) || errors.Is(err, ErrInvalidToken)) {
			t.Errorf("Allow error %v must be a 403 error only", err)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	clk := &clock{t: t0}
	k1, k2, k3 := testKey("k1"), testKey("k2"), testKey("k3")
	m := newTestManager(t, clk, k1)
	req := Request{App: "a", BCID: bws.BCID{Storage: "bws"}, Task: 259}
	old, _, err := m.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetKeys(k2, k1); err != nil {
		t.Fatal(err)
	}
	c, err := m.Validate(old)
	if err != nil || c.KeyID != "k1" {
		t.Fatalf("old token after rotation: %+v, %v", c, err)
	}
	fresh, c, err := m.Issue(req)
	if err != nil || c.KeyID != "k2" || segment(t, fresh, 0)["kid"] != "k2" {
		t.Fatalf("new token: kid %q, %v", c.KeyID, err)
	}
	if err := m.SetKeys(k3, k2); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(old); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a dropped key: %v", err)
	}
	if _, err := m.Validate(fresh); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}

	// The manager keeps its own copy of the secret.
	k := testKey("k4")
	if err := m.SetKeys(k); err != nil {
		t.Fatal(err)
	}
	raw, _, _ := m.Issue(req)
	k.Secret[0] ^= 1
	if _, err := m.Validate(raw); err != nil {
		t.Fatalf("caller's slice changed the key: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	good := testKey("k1")
	tests := []struct {
		name string
		cfg  Config
		keys []Key
	}{
		{"no audience", Config{}, []Key{good}},
		{"negative lifetime", Config{Audience: testAud, Lifetime: -time.Second}, []Key{good}},
		{"short secret", Config{Audience: testAud}, []Key{{ID: "k", Secret: make([]byte, 31)}}},
		{"no key id", Config{Audience: testAud}, []Key{{Secret: good.Secret}}},
		{"key id with space", Config{Audience: testAud}, []Key{{ID: "a b", Secret: good.Secret}}},
		{"long key id", Config{Audience: testAud}, []Key{{ID: strings.Repeat("k", 65), Secret: good.Secret}}},
		{"duplicate key id", Config{Audience: testAud}, []Key{good, good}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, tt.keys[0], tt.keys[1:]...); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}

func TestConcurrentRotation(t *testing.T) {
	m := newTestManager(t, &clock{t: t0})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				raw, _, err := m.Issue(Request{App: "a", BCID: bws.BCID{Storage: "s"}, Task: 259})
				if err != nil {
					t.Error(err)
					return
				}
				// Both keys stay valid throughout, whichever signed.
				if _, err := m.Validate(raw); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		cur, prev := testKey("k1"), testKey("k2")
		if i%2 == 1 {
			cur, prev = prev, cur
		}
		if err := m.SetKeys(cur, prev); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func FuzzValidate(f *testing.F) {
	clk := &clock{t: t0}
	m := newTestManager(f, clk)
	good := hs256(f, validClaims())
	for _, s := range []string{
		good, good + "x", "", ".", "..", "a.b.c", strings.Replace(good, "e", "f", 1),
		hs256(f, with(validClaims(), "task", 0x302, "challenge", `[["left","right"],["up","down"]]`)),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", validClaims()),
		"eyJhbGciOiJub25lIn0.e30.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := m.Validate(raw)
		checkResult(t, c, err)
	})
}

// FuzzValidateSignedClaims signs arbitrary payloads with the real key so the
// fuzzer reaches the claim checks behind the signature.
func FuzzValidateSignedClaims(f *testing.F) {
	clk := &clock{t: t0}
	m := newTestManager(f, clk)
	for _, c := range []jwt.MapClaims{
		validClaims(),
		with(validClaims(), "task", 0x302, "challenge", `[["left","right"],["up","down"]]`),
		without(with(validClaims(), "task", 0x183), "bcid"),
		with(validClaims(), "task", "259"),
		with(validClaims(), "aud", []string{testAud}),
	} {
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		text := header + "." + base64.RawURLEncoding.EncodeToString(payload)
		sig, err := jwt.SigningMethodHS256.Sign(text, testKey("k1").Secret)
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Validate(text + "." + base64.RawURLEncoding.EncodeToString(sig))
		checkResult(t, c, err)
	})
}

// checkResult states what any Validate result must satisfy.
func checkResult(t *testing.T, c *Claims, err error) {
	t.Helper()
	if err != nil {
		if c != nil {
			t.Fatal("claims returned with an error")
		}
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("error %v is not a 401 error", err)
		}
		return
	}
	if c.Issuer != Issuer || c.Audience != testAud || c.App == "" || c.KeyID != "k1" {
		t.Fatalf("accepted claims %+v", c)
	}
	if err := c.Task.Validate(); err != nil {
		t.Fatalf("accepted task: %v", err)
	}
	if err := c.Traits.Validate(); err != nil {
		t.Fatalf("accepted traits: %v", err)
	}
	if c.BCID.IsZero() && c.Task.Operation() != bws.OpLivenessDetection {
		t.Fatalf("accepted a %v token without BCID", c.Task.Operation())
	}
	if c.Task.ChallengeResponse() != (c.Challenge != nil) || (c.Challenge != nil && len(c.Challenge) != c.Task.MaxTries()) {
		t.Fatalf("accepted challenge %v for task %v", c.Challenge, c.Task)
	}
	if c.Expires.Add(DefaultLeeway).Before(t0) || c.NotBefore.After(t0.Add(DefaultLeeway)) {
		t.Fatalf("accepted times nbf %v exp %v at %v", c.NotBefore, c.Expires, t0)
	}
	if err := c.Allow(c.Task.Operation()); err != nil {
		t.Fatalf("Allow of its own task: %v", err)
	}
}

func BenchmarkIssue(b *testing.B) {
	m := newTestManager(b, &clock{t: t0})
	req := Request{App: "a", BCID: bws.BCID{Storage: "bws", Partition: 1, ClassID: 2}, Task: 259}
	for b.Loop() {
		if _, _, err := m.Issue(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	m := newTestManager(b, &clock{t: t0})
	raw := hs256(b, with(validClaims(), "task", 0x302, "challenge", `[["left","right","down"],["up","down","left"]]`))
	for b.Loop() {
		if _, err := m.Validate(raw); err != nil {
			b.Fatal(err)
		}
	}
}
