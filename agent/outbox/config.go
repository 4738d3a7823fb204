package outbox

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
	// The secret may come from AppSecretFile instead, or, when both are
	// empty, from the systemd credential CredentialAppSecret (see
	// LoadSecrets); Validate cannot see those, so a missing secret is
	// reported when the agent starts.
	AppID         string `yaml:"appID"`
	AppSecret     string `yaml:"appSecret"`
	AppSecretFile string `yaml:"appSecretFile"`
	// LiveDetection asks a BWS 2 centre to check liveness again on the
	// uploaded samples (the device decided already; off by default).
	LiveDetection bool `yaml:"liveDetection"`

	// ClientID and ClientKey (base64) sign the BWS 3 JWT (sub = client id,
	// aud = "BWS") with SigningMethod: HS256, HS384 or HS512.
	// The key may come from ClientKeyFile or the systemd credential
	// CredentialClientKey instead, as the BWS 2 secret.
	ClientID      string `yaml:"clientID"`
	ClientKey     string `yaml:"clientKey"`
	ClientKeyFile string `yaml:"clientKeyFile"`
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

	// Concurrency is how many classes are delivered at once; each class's
	// jobs still go one at a time, in order. A central BWS analyses every
	// uploaded sample, so one call at a time leaves it mostly idle.
	Concurrency int `yaml:"concurrency"`
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

// maxConcurrency bounds Config.Concurrency: more calls at once only queue
// at the centre and hold more samples in memory.
const maxConcurrency = 32

// DefaultConfig is sync mode off, with every other option at its default.
func DefaultConfig() Config {
	return Config{
		Protocol:      ProtocolBWS2,
		SigningMethod: "HS256",
		Timeout:       10 * time.Second,
		Map:           []MapRule{}, // as the YAML "map: []" decodes
		Concurrency:   4,
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
		if c.AppID == "" {
			return fmt.Errorf("'sync.appID' is required for protocol bws2")
		}
		if c.AppSecret != "" && c.AppSecretFile != "" {
			return fmt.Errorf("'sync.appSecret' and 'sync.appSecretFile' are exclusive: set one")
		}
	case ProtocolBWS3:
		if c.ClientID == "" {
			return fmt.Errorf("'sync.clientID' is required for protocol bws3")
		}
		if c.ClientKey != "" && c.ClientKeyFile != "" {
			return fmt.Errorf("'sync.clientKey' and 'sync.clientKeyFile' are exclusive: set one")
		}
		if c.ClientKey != "" {
			if err := checkClientKey(c.ClientKey); err != nil {
				return err
			}
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
	case c.Concurrency < 1 || c.Concurrency > maxConcurrency:
		return fmt.Errorf("'sync.concurrency' must be 1..%d (got %d)", maxConcurrency, c.Concurrency)
	}
	if err := c.Backoff.Validate("sync.backoff"); err != nil {
		return err
	}
	if _, err := newMapper(c.Map, c.MapStrict); err != nil {
		return err
	}
	return nil
}

func checkClientKey(k string) error {
	if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) < 32 {
		return fmt.Errorf("'sync.clientKey' must be base64 of at least 32 bytes")
	}
	return nil
}

// Names of the systemd credentials (LoadCredential=) that hold the secrets
// when the config names neither the secret nor a file.
const (
	CredentialAppSecret = "sync-app-secret"
	CredentialClientKey = "sync-client-key"
)

// maxSecretFile bounds a secret file; a real one is a line.
const maxSecretFile = 4 << 10

// LoadSecrets returns c with the protocol's secret read from its file, or
// from credDir/<credential> ($CREDENTIALS_DIRECTORY; "" when not under
// systemd) when neither the secret nor a file is set, and checks it. A
// disabled config is returned as is. The agent calls it at start, not at
// load: commands that only read the store must not need the secret.
func (c Config) LoadSecrets(credDir string) (Config, error) {
	if !c.Enabled {
		return c, nil
	}
	load := func(value *string, file, key, cred string) error {
		if *value != "" {
			return nil
		}
		if file == "" && credDir != "" {
			if p := filepath.Join(credDir, cred); fileExists(p) {
				file = p
			}
		}
		if file == "" {
			return fmt.Errorf("'sync.%s' is required for protocol %s: set it, '%sFile', or pass the systemd credential %s", key, c.Protocol, "sync."+key, cred)
		}
		b, err := readSecret(file)
		if err != nil {
			return fmt.Errorf("'sync.%sFile': %w", key, err)
		}
		*value = b
		return nil
	}
	switch c.Protocol {
	case ProtocolBWS2:
		if err := load(&c.AppSecret, c.AppSecretFile, "appSecret", CredentialAppSecret); err != nil {
			return c, err
		}
	case ProtocolBWS3:
		if err := load(&c.ClientKey, c.ClientKeyFile, "clientKey", CredentialClientKey); err != nil {
			return c, err
		}
		if err := checkClientKey(c.ClientKey); err != nil {
			return c, err
		}
	}
	return c, nil
}

// readSecret reads a secret file: one line, surrounding white space
// trimmed.
func readSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s: must hold the secret on one line", path)
	}
	return s, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
