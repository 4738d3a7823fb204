package outbox

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Protocols of the central service.
const (
	ProtocolBWS2 = "bws2" // a BWS 2 extension endpoint (BioID's, or another bwsagent)
	ProtocolBWS3 = "bws3" // BWS 3 REST
)

// Config is the sync block of the agent's config (key prefix "sync.").
type Config struct {
	// Enabled turns sync mode on: enrollments and deletions go to the
	// outbox and on to the centre.
	Enabled bool `yaml:"enabled"`
	// Protocol is bws2 or bws3.
	Protocol string `yaml:"protocol"`
	// URL is the centre's base URL: the extension base for bws2
	// (https://bws.example/extension/), the REST root for bws3.
	URL string `yaml:"url"`

	// AppID and AppSecret are the BWS 2 app credentials (Basic auth).
	AppID     string `yaml:"appID"`
	AppSecret string `yaml:"appSecret"`
	// LiveDetection asks a BWS 2 centre to check liveness again on the
	// uploaded samples (the device decided already; off by default).
	LiveDetection bool `yaml:"liveDetection"`

	// ClientID and ClientKey (base64) sign the BWS 3 JWT (sub = client id,
	// aud = "BWS") with SigningMethod: HS256, HS384 or HS512.
	ClientID      string `yaml:"clientID"`
	ClientKey     string `yaml:"clientKey"`
	SigningMethod string `yaml:"signingMethod"`

	// CAFile is a PEM file of CAs to trust instead of the system roots (a
	// pinned private CA). Empty: system roots.
	CAFile string `yaml:"caFile"`
	// Timeout bounds every call to the centre.
	Timeout time.Duration `yaml:"timeout"`

	// Map rewrites local BCIDs to central ones; the first matching rule
	// wins. Unmatched classes keep their BCID unless MapStrict is set, when
	// their jobs fail permanently (dead letters).
	Map       []MapRule `yaml:"map"`
	MapStrict bool      `yaml:"mapStrict"`

	// Backoff is the retry policy after transient failures.
	Backoff Backoff `yaml:"backoff"`
	// PollInterval is how often the sender looks at the outbox without
	// being notified (jobs written by another process, expiry).
	PollInterval time.Duration `yaml:"pollInterval"`
	// FlushTimeout bounds the delivery of due jobs at shutdown.
	FlushTimeout time.Duration `yaml:"flushTimeout"`

	// MaxJobs and MaxBytes bound the outbox and dead letters together;
	// beyond them new local enrollments are refused (store.ErrOutboxFull).
	MaxJobs  int   `yaml:"maxJobs"`
	MaxBytes int64 `yaml:"maxBytes"`
	// MaxAge is the retention of samples awaiting delivery: older enroll
	// jobs have their samples erased and become dead letters.
	MaxAge time.Duration `yaml:"maxAge"`
}

// DefaultConfig is sync mode off, with every other option at its default.
func DefaultConfig() Config {
	return Config{
		Protocol:      ProtocolBWS2,
		SigningMethod: "HS256",
		Timeout:       10 * time.Second,
		Backoff:       DefaultBackoff(),
		PollInterval:  30 * time.Second,
		FlushTimeout:  5 * time.Second,
		MaxJobs:       10000,
		MaxBytes:      1 << 30,
		MaxAge:        30 * 24 * time.Hour,
	}
}

// Validate checks the config; errors name the key. A disabled config is
// always valid.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("'sync.url' must be an http or https URL (got %q)", c.URL)
	}
	switch c.Protocol {
	case ProtocolBWS2:
		if c.AppID == "" || c.AppSecret == "" {
			return fmt.Errorf("'sync.appID' and 'sync.appSecret' are required for protocol bws2")
		}
	case ProtocolBWS3:
		if c.ClientID == "" {
			return fmt.Errorf("'sync.clientID' is required for protocol bws3")
		}
		if k, err := base64.StdEncoding.DecodeString(c.ClientKey); err != nil || len(k) < 32 {
			return fmt.Errorf("'sync.clientKey' must be base64 of at least 32 bytes")
		}
		if _, err := signingMethod(c.SigningMethod); err != nil {
			return err
		}
	default:
		return fmt.Errorf("'sync.protocol' must be bws2 or bws3 (got %q)", c.Protocol)
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return fmt.Errorf("'sync.caFile': %w", err)
		}
	}
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("'sync.timeout' must be greater than zero")
	case c.PollInterval <= 0:
		return fmt.Errorf("'sync.pollInterval' must be greater than zero")
	case c.FlushTimeout < 0:
		return fmt.Errorf("'sync.flushTimeout' must not be negative")
	case c.MaxJobs <= 0:
		return fmt.Errorf("'sync.maxJobs' must be greater than zero")
	case c.MaxBytes <= 0:
		return fmt.Errorf("'sync.maxBytes' must be greater than zero")
	case c.MaxAge <= 0:
		return fmt.Errorf("'sync.maxAge' must be greater than zero")
	}
	if err := c.Backoff.validate("sync.backoff"); err != nil {
		return err
	}
	if _, err := newMapper(c.Map, c.MapStrict); err != nil {
		return err
	}
	return nil
}
