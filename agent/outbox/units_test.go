package outbox

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/store"
	"github.com/google/uuid"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{0, 0.5, time.Second},
		{1, 0.5, 2 * time.Second},
		{3, 0.5, 8 * time.Second},
		{4, 0.5, 10 * time.Second},
		{1000, 0.5, 10 * time.Second},
		{0, 0, 800 * time.Millisecond},
		{0, 0.999999, 1199999800 * time.Nanosecond},
		{10, 0.999, 10 * time.Second}, // jitter never passes the cap
	}
	for _, tt := range tests {
		if got := b.Delay(tt.attempt, tt.r); got.Round(time.Microsecond) != tt.want.Round(time.Microsecond) {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok2 := DefaultConfig()
	ok2.Enabled, ok2.URL, ok2.AppID, ok2.AppSecret = true, "https://bws.example/extension/", "a", "s"
	ok3 := DefaultConfig()
	ok3.Enabled, ok3.Protocol, ok3.URL, ok3.ClientID = true, ProtocolBWS3, "https://bws3.example", "c"
	ok3.ClientKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	tests := []struct {
		name string
		mod  func(c *Config)
		base Config
		want string // part of the error; "" valid
	}{
		{"disabled default", func(c *Config) {}, DefaultConfig(), ""},
		{"bws2", func(c *Config) {}, ok2, ""},
		{"bws3", func(c *Config) {}, ok3, ""},
		{"url", func(c *Config) { c.URL = "ftp://x" }, ok2, "'sync.url'"},
		{"app id", func(c *Config) { c.AppID = "" }, ok2, "'sync.appID'"},
		{"secret from a credential", func(c *Config) { c.AppSecret = "" }, ok2, ""},
		{"secret and file", func(c *Config) { c.AppSecretFile = "/run/s" }, ok2, "'sync.appSecretFile' are exclusive"},
		{"key from a file", func(c *Config) { c.ClientKey, c.ClientKeyFile = "", "/run/k" }, ok3, ""},
		{"protocol", func(c *Config) { c.Protocol = "bws4" }, ok2, "'sync.protocol'"},
		{"client key", func(c *Config) { c.ClientKey = "c2hvcnQ=" }, ok3, "'sync.clientKey'"},
		{"signing", func(c *Config) { c.SigningMethod = "RS256" }, ok3, "'sync.signingMethod'"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, ok2, "'sync.timeout'"},
		{"max jobs", func(c *Config) { c.MaxJobs = 0 }, ok2, "'sync.maxJobs'"},
		{"max age", func(c *Config) { c.MaxAge = 0 }, ok2, "'sync.maxAge'"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, ok2, "'sync.concurrency'"},
		{"backoff", func(c *Config) { c.Backoff.Max = time.Millisecond }, ok2, "'sync.backoff.max'"},
		{"ca file", func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, ok2, "'sync.caFile'"},
		{"map", func(c *Config) { c.Map = []MapRule{{From: "bws/x", To: "central"}} }, ok2, "'sync.map[0].from'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base
			tt.mod(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMapper(t *testing.T) {
	rules := []MapRule{
		{From: "bws/12", To: "central/3", ClassOffset: 1000000},
		{From: "bws", To: "central"},
		{From: "lab/1", To: "lab/2"},
	}
	m, err := newMapper(rules, false)
	if err != nil {
		t.Fatal(err)
	}
	strict, _ := newMapper(rules, true)
	tests := []struct {
		in, want string
		strict   bool
		err      bool
	}{
		{"bws/12/4711", "central/3/1004711", false, false},
		{"bws/13/4711", "central/13/4711", false, false},
		{"lab/1/5", "lab/2/5", false, false},
		{"other/1/5", "other/1/5", false, false},
		{"other/1/5", "", true, true},
		{"lab/3/5", "", true, true},
	}
	for _, tt := range tests {
		in, _ := bws.ParseBCID(tt.in)
		mm := m
		if tt.strict {
			mm = strict
		}
		got, err := mm.Map(in)
		if (err != nil) != tt.err || err == nil && got.String() != tt.want {
			t.Errorf("Map(%s, strict %v) = %v, %v; want %s", tt.in, tt.strict, got, err, tt.want)
		}
	}
}

// TestPinnedCA: with caFile the client trusts that CA only.
func TestPinnedCA(t *testing.T) {
	centre := newCentre2With(t, true)
	cfg := centre.config()
	ctx := context.Background()

	sys, _ := NewBWS2(cfg) // system roots do not know httptest's CA
	if _, err := sys.Status(ctx, class(1)); err == nil || IsPermanent(err) {
		t.Fatalf("untrusted centre: %v", err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: centre.srv.Certificate().Raw})
	cfg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(cfg.CAFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	pinned, err := NewBWS2(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if st, err := pinned.Status(ctx, class(1)); err != nil || st.Enrolled {
		t.Fatalf("pinned: %+v, %v", st, err)
	}
	if err := pinned.Enroll(ctx, class(1), uuid.New(), [][]byte{fakeImage(1, 0)}); err != nil {
		t.Fatalf("enroll over TLS: %v", err)
	}
}

// TestClientErrors checks the typed errors the clients return.
func TestClientErrors(t *testing.T) {
	centre := newCentre2(t)
	cfg := centre.config()
	ctx := context.Background()
	c, _ := NewBWS2(cfg)
	cfg.AppSecret = "wrong"
	bad, _ := NewBWS2(cfg)
	tests := []struct {
		name      string
		call      func() error
		permanent bool
		status    int
	}{
		{"wrong secret", func() error { _, err := bad.Status(ctx, class(1)); return err }, false, 401},
		{"not enough samples", func() error { return c.Enroll(ctx, class(1), uuid.New(), nil) }, true, 200},
		{"delete unknown class", func() error { return c.Delete(ctx, class(9), uuid.New()) }, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var de *DeliveryError
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.As(err, &de) || de.Permanent != tt.permanent || de.Status != tt.status {
				t.Fatalf("err %#v", err)
			}
		})
	}
	// A canceled call is the caller's, not a DeliveryError.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Status(cctx, class(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

// BenchmarkDeliverBWS2 measures delivery to a local BWS 2 centre with a
// durable store (fsync on): each job is isenrolled, checkpoint, token, two
// uploads, enroll, mark delivered.
func BenchmarkDeliverBWS2(b *testing.B) {
	clk := newFakeClock()
	opts := storeOptions(clk)
	opts.NoSync = false
	opts.Now = nil
	db, err := store.Open(filepath.Join(b.TempDir(), "agent.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	centre := newCentre2(b)
	delivered := make(chan string, b.N)
	centre.set(func(c *centre2) { c.delivered = delivered })
	for i := range b.N {
		enqueue(b, db, class(int64(i+1)), 0)
	}
	client, _ := NewClient(centre.config())
	s, err := New(Options{DB: db, Client: client, Config: centre.config()})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		<-delivered
	}
	el := time.Since(start)
	b.StopTimer()
	s.Close()
	b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
}

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, CredentialAppSecret), []byte("from-credential\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	bws2 := DefaultConfig()
	bws2.Enabled, bws2.URL, bws2.AppID = true, "http://127.0.0.1:1/extension/", "a"
	bws3 := DefaultConfig()
	bws3.Enabled, bws3.Protocol, bws3.URL, bws3.ClientID = true, ProtocolBWS3, "http://127.0.0.1:1", "c"
	tests := []struct {
		name    string
		mod     func(c *Config)
		base    Config
		credDir string
		want    string // the loaded secret
		err     string
	}{
		{"yaml secret wins", func(c *Config) { c.AppSecret = "inline" }, bws2, creds, "inline", ""},
		{"file", func(c *Config) { c.AppSecretFile = write("s", "  from-file \n") }, bws2, creds, "from-file", ""},
		{"credential", func(c *Config) {}, bws2, creds, "from-credential", ""},
		{"nothing", func(c *Config) {}, bws2, "", "", "'sync.appSecretFile', or pass the systemd credential sync-app-secret"},
		{"missing file", func(c *Config) { c.AppSecretFile = filepath.Join(dir, "nope") }, bws2, "", "", "'sync.appSecretFile'"},
		{"two lines", func(c *Config) { c.AppSecretFile = write("two", "a\nb\n") }, bws2, "", "", "one line"},
		{"bws3 key file", func(c *Config) { c.ClientKeyFile = write("k", key+"\n") }, bws3, "", key, ""},
		{"bws3 short key", func(c *Config) { c.ClientKeyFile = write("short", "c2hvcnQ=") }, bws3, "", "", "'sync.clientKey' must be base64"},
		{"disabled", func(c *Config) { c.Enabled = false }, bws2, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base
			tt.mod(&c)
			got, err := c.LoadSecrets(tt.credDir)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("LoadSecrets = %v, want %q", err, tt.err)
			}
			if err != nil {
				return
			}
			secret := got.AppSecret
			if c.Protocol == ProtocolBWS3 {
				secret = got.ClientKey
			}
			if secret != tt.want {
				t.Errorf("secret %q, want %q", secret, tt.want)
			}
		})
	}
}
