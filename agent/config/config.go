// Package config is bwsagent's configuration: one struct with every option,
// loaded in layers — defaults, a YAML file (unknown keys rejected), the
// environment (BWSAGENT_…), command-line settings — and then validated with
// errors that name the key.
//
// Options whose default depends on the machine (data, model and key
// locations, the worker count) are empty in Default and in the shipped
// configs/bwsagent.yaml; Resolve fills them in, so that the shipped file
// stays equal to the defaults on every machine.
//
// The package is pure Go: it does not import the face engine, the liveness
// checker or the API server. It mirrors the API server's options (the
// agent converts them) and shares the liveness thresholds through the
// pure-Go package liveness/policy.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/outbox"
	"github.com/bwsagent/bwsagent/face/models"
	"github.com/bwsagent/bwsagent/liveness/policy"
	"github.com/bwsagent/bwsagent/store"
)

// Config is every option of the agent. The yaml tag is the key in the file;
// the environment variable is BWSAGENT_ plus the key path in upper snake case
// (api.corsOrigins → BWSAGENT_API_CORS_ORIGINS). configs/bwsagent.yaml
// documents each option.
type Config struct {
	// Listen is the TCP address of the one HTTP listener (BWS routes,
	// /openapi.json, /metrics, /healthz, /readyz). Keep it on loopback
	// unless a reverse proxy terminates TLS in front of the agent.
	Listen string `yaml:"listen"`
	// DataDir holds the store, the generated template key and the admin
	// socket. Empty: $STATE_DIRECTORY (systemd StateDirectory=), else
	// ~/.local/state/bwsagent.
	DataDir string `yaml:"dataDir"`
	// ModelsDir is the model cache ('bwsagent models fetch'). Empty:
	// $CACHE_DIRECTORY/models, else ~/.cache/bwsagent/models.
	ModelsDir string `yaml:"modelsDir"`
	// Workers is how many face-model inferences run at once, each with its
	// own copy of the networks (~45 MB). 0: one per CPU.
	Workers int `yaml:"workers"`
	// TemplateKeyFile holds the AES-256 key that seals templates and
	// signing keys in the store. Empty: $CREDENTIALS_DIRECTORY/template.key
	// when systemd passes that credential (LoadCredential=), else
	// <dataDir>/template.key, generated (mode 0600) on first start.
	TemplateKeyFile string `yaml:"templateKeyFile"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"logLevel"`
	// LogFormat is text or json.
	LogFormat string `yaml:"logFormat"`
	// Source is the camera or stream URI of the capture sessions and the
	// preview (not used by the BWS API itself), see capture.ParseURI;
	// "demo" is a synthetic head. Empty: no camera.
	Source string `yaml:"source"`
	// Capture, Preview and Kiosk configure the camera, the preview socket
	// and the kiosk page with its capture sessions (capture.go).
	Capture Capture `yaml:"capture"`
	Preview Preview `yaml:"preview"`
	Kiosk   Kiosk   `yaml:"kiosk"`
	// ReadTimeout bounds reading one request, body included (uploads).
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// WriteTimeout bounds one request from the end of its headers to the
	// end of the answer; keep it above api.jobTimeout.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// ShutdownTimeout is how long requests in flight may take to finish
	// after SIGTERM before their connections are closed.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// AuditRetention is how long the audit log keeps an entry: older ones
	// are deleted by the minutely housekeeping, so the store does not grow
	// for ever on a busy kiosk. 0 keeps every entry.
	AuditRetention time.Duration `yaml:"auditRetention"`
	// API configures the BWS routes.
	API API `yaml:"api"`
	// Liveness holds the decision thresholds of the liveness checker
	// (package liveness/policy, pure Go like this package). The defaults
	// come from the evaluation, see liveness/README.md; 'bwsagent eval
	// liveness' measures the effect of a change.
	Liveness policy.Thresholds `yaml:"liveness"`
	// Sync sends enrollments and deletions to a central BWS (sync.go).
	Sync outbox.Config `yaml:"sync"`
}

// API mirrors the options of the BWS API server (agent/api.Config).
type API struct {
	// BasePath is the prefix of every BWS route, with a leading and a
	// trailing slash, as BioID's own "/extension/".
	BasePath string `yaml:"basePath"`
	// PublicURL is the agent's base URL as clients reach it: the tokens'
	// "aud" claim and the agent's own origin for CORS. Empty:
	// http://<listen> (127.0.0.1 for a wildcard host). Changing it
	// invalidates tokens already issued.
	PublicURL string `yaml:"publicURL"`
	// AllowedHosts are the Host header values accepted, "host" (any port)
	// or "host:port"; anything else is refused with 403 (DNS rebinding).
	// Empty: localhost, 127.0.0.1 and [::1] with publicURL's port, and
	// publicURL's own host.
	AllowedHosts []string `yaml:"allowedHosts"`
	// CORSOrigins are the origins (scheme://host[:port], lower case) whose
	// pages may call the API from a browser, e.g. BWS's UI. The agent's own
	// origin is always allowed.
	CORSOrigins []string `yaml:"corsOrigins"`
	// MaxUploadBytes bounds one sample (the image file, before base64).
	MaxUploadBytes int64 `yaml:"maxUploadBytes"`
	// MaxPixels bounds a sample's width × height, read from the image
	// header before anything is decoded.
	MaxPixels int64 `yaml:"maxPixels"`
	// MaxSamplesPerToken bounds the samples held for one token (BWS's UI
	// uploads at most 20 a try).
	MaxSamplesPerToken int `yaml:"maxSamplesPerToken"`
	// MaxHeldSamples bounds the samples held for all tokens together, so
	// memory stays bounded however many tokens are issued.
	MaxHeldSamples int `yaml:"maxHeldSamples"`
	// JobTimeout bounds one upload's analysis and one biometric call; a
	// call past it answers ExecutionOfJobTimedOut.
	JobTimeout time.Duration `yaml:"jobTimeout"`
	// VerifyThreshold is the cosine similarity of templates a verify needs
	// (0.375: FMR 0.1 % on LFW; 0.27: FMR 1 %).
	VerifyThreshold float64 `yaml:"verifyThreshold"`
	// IdentifyThreshold is the similarity an identify match needs.
	IdentifyThreshold float64 `yaml:"identifyThreshold"`
	// MaxTemplatesPerClass caps a class's templates; re-enrolling keeps
	// the best-quality ones.
	MaxTemplatesPerClass int `yaml:"maxTemplatesPerClass"`
	// LockoutFailures failed verifications of one class within
	// LockoutWindow lock the class for LockoutWindow (429 with
	// Retry-After).
	LockoutFailures int           `yaml:"lockoutFailures"`
	LockoutWindow   time.Duration `yaml:"lockoutWindow"`
	// AuthFailures wrong Basic-auth secrets for one app id within
	// AuthWindow lock the app id out (429, even with the right secret);
	// each further lockout doubles, up to MaxAuthLockout.
	AuthFailures   int           `yaml:"authFailures"`
	AuthWindow     time.Duration `yaml:"authWindow"`
	MaxAuthLockout time.Duration `yaml:"maxAuthLockout"`
	// Label is the "Label" /status reports.
	Label string `yaml:"label"`
}

// Default returns the defaults, the values configs/bwsagent.yaml shows.
// The API defaults equal agent/api.DefaultConfig (a test in package agent
// checks it).
func Default() Config {
	return Config{
		Listen:          "127.0.0.1:8480",
		LogLevel:        "info",
		LogFormat:       "text",
		ReadTimeout:     30 * time.Second,
		WriteTimeout:    60 * time.Second,
		IdleTimeout:     120 * time.Second,
		ShutdownTimeout: 10 * time.Second,
		AuditRetention:  90 * 24 * time.Hour,
		Capture:         defaultCapture(),
		Preview:         defaultPreview(),
		Kiosk:           defaultKiosk(),
		API: API{
			BasePath:             "/extension/",
			AllowedHosts:         []string{},
			CORSOrigins:          []string{},
			MaxUploadBytes:       bws.DefaultMaxSampleBytes,
			MaxPixels:            16_000_000,
			MaxSamplesPerToken:   20,
			MaxHeldSamples:       500,
			JobTimeout:           15 * time.Second,
			VerifyThreshold:      0.375,
			IdentifyThreshold:    0.375,
			MaxTemplatesPerClass: store.DefaultMaxTemplatesPerClass,
			LockoutFailures:      5,
			LockoutWindow:        3 * time.Minute,
			AuthFailures:         5,
			AuthWindow:           time.Minute,
			MaxAuthLockout:       time.Hour,
			Label:                "bwsagent",
		},
		Liveness: policy.Default(),
		Sync:     outbox.DefaultConfig(),
	}
}

// Validate checks every option and returns all problems, each naming its
// key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("'%s' %s", key, fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "must be host:port, got %q", c.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen", "must have a port 0..65535, got %q", c.Listen)
	} else if host == "" {
		// An empty host listens on every interface: say so explicitly.
		bad("listen", "must name the host (127.0.0.1:%s for this device only, 0.0.0.0:%s for every interface)", port, port)
	}
	if c.Workers < 0 || c.Workers > 256 {
		bad("workers", "must be 0..256 (0: one per CPU), got %d", c.Workers)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("logLevel", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("logFormat", "must be text or json, got %q", c.LogFormat)
	}
	if strings.ContainsAny(c.Source, "\x00\n\r") {
		bad("source", "must be one line")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"readTimeout", c.ReadTimeout}, {"writeTimeout", c.WriteTimeout},
		{"idleTimeout", c.IdleTimeout}, {"shutdownTimeout", c.ShutdownTimeout},
		{"api.jobTimeout", c.API.JobTimeout}, {"api.lockoutWindow", c.API.LockoutWindow},
		{"api.authWindow", c.API.AuthWindow}, {"api.maxAuthLockout", c.API.MaxAuthLockout},
	} {
		if d.v <= 0 {
			bad(d.key, "must be greater than zero, got %v", d.v)
		}
	}
	if c.AuditRetention < 0 {
		bad("auditRetention", "must be 0 (keep every entry) or positive, got %v", c.AuditRetention)
	}
	if c.WriteTimeout > 0 && c.API.JobTimeout > 0 && c.WriteTimeout <= c.API.JobTimeout {
		bad("writeTimeout", "must be greater than 'api.jobTimeout' (%v), got %v", c.API.JobTimeout, c.WriteTimeout)
	}
	a := c.API
	if !strings.HasPrefix(a.BasePath, "/") || !strings.HasSuffix(a.BasePath, "/") || strings.ContainsAny(a.BasePath, "?#% \t") {
		bad("api.basePath", "must start and end with '/' and hold no '?', '#', '%%' or spaces, got %q", a.BasePath)
	}
	if a.PublicURL != "" {
		if err := checkURL(a.PublicURL); err != nil {
			bad("api.publicURL", "%v", err)
		}
	}
	for _, h := range a.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ \t@?#") {
			bad("api.allowedHosts", "must hold \"host\" or \"host:port\" entries, got %q", h)
		}
	}
	for _, o := range a.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			bad("api.corsOrigins", "%v", err)
		}
	}
	if a.MaxUploadBytes < 1 || a.MaxUploadBytes > 64<<20 {
		bad("api.maxUploadBytes", "must be 1..%d (64 MiB), got %d", 64<<20, a.MaxUploadBytes)
	}
	if a.MaxPixels < 1 || a.MaxPixels > 100_000_000 {
		bad("api.maxPixels", "must be 1..100000000, got %d", a.MaxPixels)
	}
	if a.MaxSamplesPerToken < 2 || a.MaxSamplesPerToken > 100 {
		bad("api.maxSamplesPerToken", "must be 2..100, got %d", a.MaxSamplesPerToken)
	}
	if a.MaxHeldSamples < a.MaxSamplesPerToken || a.MaxHeldSamples > 1_000_000 {
		bad("api.maxHeldSamples", "must be 'api.maxSamplesPerToken'..1000000, got %d", a.MaxHeldSamples)
	}
	for _, t := range []struct {
		key string
		v   float64
	}{{"api.verifyThreshold", a.VerifyThreshold}, {"api.identifyThreshold", a.IdentifyThreshold}} {
		if !(t.v > 0 && t.v < 1) {
			bad(t.key, "must be in (0, 1), got %g", t.v)
		}
	}
	if a.MaxTemplatesPerClass < 1 || a.MaxTemplatesPerClass > 1000 {
		bad("api.maxTemplatesPerClass", "must be 1..1000, got %d", a.MaxTemplatesPerClass)
	}
	if a.LockoutFailures < 1 {
		bad("api.lockoutFailures", "must be at least 1, got %d", a.LockoutFailures)
	}
	if a.AuthFailures < 1 {
		bad("api.authFailures", "must be at least 1, got %d", a.AuthFailures)
	}
	if a.AuthWindow > 0 && a.MaxAuthLockout < a.AuthWindow {
		bad("api.maxAuthLockout", "must be at least 'api.authWindow' (%v), got %v", a.AuthWindow, a.MaxAuthLockout)
	}
	if len(a.Label) > 128 {
		bad("api.label", "must be at most 128 bytes")
	}
	errs = append(errs, c.validateCapture()...)
	errs = append(errs, c.validateLiveness()...)
	errs = append(errs, c.validateSync()...)
	return errors.Join(errs...)
}

func checkURL(s string) error {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, " \t?#") {
		return fmt.Errorf("must be an http(s)://host[:port][/path] URL, got %q", s)
	}
	return nil
}

func checkOrigin(s string) error {
	if s == "*" {
		return errors.New(`must list origins explicitly ("*" would let any web page use the agent)`)
	}
	scheme, host, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || host == "" || strings.ContainsAny(host, "/ \t?#@") {
		return fmt.Errorf("must hold origins scheme://host[:port] without a path, got %q", s)
	}
	if s != strings.ToLower(s) {
		// Browsers send Origin in lower case; a mixed-case entry would never match.
		return fmt.Errorf("must be lower case as browsers send it, got %q", s)
	}
	return nil
}

// Env looks up environment variables; os.LookupEnv in production, a map in
// tests.
type Env func(key string) (string, bool)

// Resolve returns a copy of c with the machine-dependent defaults filled
// in: DataDir, ModelsDir, TemplateKeyFile, Workers. Paths become absolute.
func (c Config) Resolve(env Env) (Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	get := func(k string) string { v, _ := env(k); return v }
	if c.DataDir == "" {
		if d := get("STATE_DIRECTORY"); d != "" {
			// systemd may pass several colon-separated directories; the
			// first is ours.
			c.DataDir = strings.Split(d, ":")[0]
		} else {
			home := get("HOME")
			if home == "" {
				var err error
				if home, err = os.UserHomeDir(); err != nil {
					return c, fmt.Errorf("'dataDir': no home directory to default to, set it: %w", err)
				}
			}
			c.DataDir = filepath.Join(home, ".local", "state", "bwsagent")
		}
	}
	if c.ModelsDir == "" {
		if d := get("CACHE_DIRECTORY"); d != "" {
			c.ModelsDir = filepath.Join(strings.Split(d, ":")[0], "models")
		} else {
			d, err := models.DefaultDir()
			if err != nil {
				return c, fmt.Errorf("'modelsDir': %w", err)
			}
			c.ModelsDir = d
		}
	}
	if c.TemplateKeyFile == "" {
		c.TemplateKeyFile = filepath.Join(c.DataDir, TemplateKeyName)
		if d := get("CREDENTIALS_DIRECTORY"); d != "" {
			if p := filepath.Join(d, TemplateKeyName); fileExists(p) {
				c.TemplateKeyFile = p
			}
		}
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	for _, p := range []*string{&c.DataDir, &c.ModelsDir, &c.TemplateKeyFile} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return c, fmt.Errorf("resolve %s: %w", *p, err)
		}
		*p = abs
	}
	return c, nil
}

// File names inside DataDir.
const (
	// StoreName is the BoltDB store.
	StoreName = "bwsagent.db"
	// AdminSocketName is the admin socket of the running agent.
	AdminSocketName = "admin.sock"
	// TemplateKeyName is the generated template key (and the name of the
	// systemd credential).
	TemplateKeyName = "template.key"
)

// StorePath is the store file in DataDir (call on a resolved Config).
func (c Config) StorePath() string { return filepath.Join(c.DataDir, StoreName) }

// AdminSocket is the admin socket in DataDir (call on a resolved Config).
func (c Config) AdminSocket() string { return filepath.Join(c.DataDir, AdminSocketName) }

// BaseURL is the agent's public base URL: api.publicURL, else derived from
// addr (the bound listen address, whose port is known even when listen
// asked for port 0). No trailing slash.
func (c Config) BaseURL(addr string) string {
	if c.API.PublicURL != "" {
		return strings.TrimSuffix(c.API.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	switch host {
	case "", "0.0.0.0", "::":
		// A wildcard is no address a client can use; loopback is.
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
