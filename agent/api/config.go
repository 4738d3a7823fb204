package api

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/store"
)

// Config configures the API. DefaultConfig documents every default;
// Validate names the key of the first bad value.
type Config struct {
	// BasePath is where the BWS routes live, with leading and trailing
	// slash. Default "/extension/", as BioID's own service.
	BasePath string
	// PublicURL is the agent's base URL as clients reach it, such as
	// "http://127.0.0.1:8080": the tokens' "aud" and the agent's own origin
	// for CORS. The daemon derives it from the listen address.
	PublicURL string
	// AllowedHosts lists the Host header values accepted, as "host" (any
	// port) or "host:port". Anything else is refused with 403, which stops
	// DNS rebinding. Empty: localhost, 127.0.0.1 and [::1] with PublicURL's
	// port, and PublicURL's own host.
	AllowedHosts []string
	// CORSOrigins lists the origins (scheme://host[:port]) whose pages may
	// call the API from a browser, e.g. BWS's UI. The agent's own origin
	// (PublicURL, or the request's own allowed Host) is always allowed.
	// Browser requests from other origins are refused.
	CORSOrigins []string

	// MaxUploadBytes bounds one sample (the image file, before base64).
	MaxUploadBytes int64
	// MaxPixels bounds a sample's width × height, read from the image
	// header before anything is decoded.
	MaxPixels int64
	// MaxSamplesPerToken bounds the samples held for one token (BWS's UI
	// uploads at most 20 a try).
	MaxSamplesPerToken int
	// MaxHeldSamples bounds the samples held for all tokens together, so
	// memory stays bounded however many tokens are issued.
	MaxHeldSamples int
	// JobTimeout bounds one upload's analysis and one biometric call;
	// a call past it answers ExecutionOfJobTimedOut.
	JobTimeout time.Duration

	// VerifyThreshold and IdentifyThreshold are the decision thresholds on
	// the cosine similarity of templates; the default is face.ThresholdFMR01
	// (FMR 0.1 %).
	VerifyThreshold, IdentifyThreshold float64
	// MaxTemplatesPerClass is the template cap of a class (re-enrolling
	// keeps the best). The store enforces it: the daemon passes it to
	// store.Options.MaxTemplatesPerClass.
	MaxTemplatesPerClass int

	// LockoutFailures failed verifications of one class within
	// LockoutWindow lock the class for LockoutWindow: /verify answers 429
	// with Retry-After.
	LockoutFailures int
	LockoutWindow   time.Duration
	// AuthFailures wrong Basic-auth secrets for one app id within
	// AuthWindow lock the app id out (429 with Retry-After, even with the
	// right secret); each further lockout doubles, up to MaxAuthLockout.
	AuthFailures   int
	AuthWindow     time.Duration
	MaxAuthLockout time.Duration

	// Version and Label are reported by /status.
	Version string
	Label   string
}

// Defaults.
const (
	DefaultBasePath           = "/extension/"
	DefaultPublicURL          = "http://127.0.0.1:8080"
	DefaultMaxPixels          = 16_000_000 // a 16 MP still; a camera frame is far smaller
	DefaultMaxSamplesPerToken = 20
	// DefaultMaxHeldSamples bounds memory to ~12 MB: a held sample is
	// ~24 KB (landmarks, pose, a 512-d template and the liveness checker's
	// 144×144 grey face patch). A kiosk flow holds 4–8 samples for a
	// second or two.
	DefaultMaxHeldSamples = 500
	DefaultJobTimeout     = 15 * time.Second
	DefaultMaxResults     = 20
	// MaxMaxResults bounds /identify's maxResults.
	MaxMaxResults = 1000
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		BasePath:             DefaultBasePath,
		PublicURL:            DefaultPublicURL,
		MaxUploadBytes:       bws.DefaultMaxSampleBytes,
		MaxPixels:            DefaultMaxPixels,
		MaxSamplesPerToken:   DefaultMaxSamplesPerToken,
		MaxHeldSamples:       DefaultMaxHeldSamples,
		JobTimeout:           DefaultJobTimeout,
		VerifyThreshold:      face.ThresholdFMR01,
		IdentifyThreshold:    face.ThresholdFMR01,
		MaxTemplatesPerClass: store.DefaultMaxTemplatesPerClass,
		LockoutFailures:      5,
		LockoutWindow:        3 * time.Minute,
		AuthFailures:         5,
		AuthWindow:           time.Minute,
		MaxAuthLockout:       time.Hour,
		Version:              "dev",
		Label:                "bwsagent",
	}
}

// Validate reports every bad value, each error naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("'%s' "+format, append([]any{key}, args...)...))
	}
	if !strings.HasPrefix(c.BasePath, "/") || !strings.HasSuffix(c.BasePath, "/") || strings.ContainsAny(c.BasePath, "?#% ") {
		bad("BasePath", "must start and end with '/' and hold no query, got %q", c.BasePath)
	}
	if _, err := originOf(c.PublicURL); err != nil {
		bad("PublicURL", "must be an absolute http(s) URL: %v", err)
	}
	for _, h := range c.AllowedHosts {
		if err := checkHostEntry(h); err != nil {
			bad("AllowedHosts", "entry %q: %v", h, err)
		}
	}
	for _, o := range c.CORSOrigins {
		if got, err := originOf(o); err != nil || got != strings.ToLower(o) {
			bad("CORSOrigins", "entry %q must be scheme://host[:port] without path", o)
		}
	}
	if c.MaxUploadBytes <= 0 || c.MaxUploadBytes > 64<<20 {
		bad("MaxUploadBytes", "must be in 1..%d, got %d", 64<<20, c.MaxUploadBytes)
	}
	if c.MaxPixels <= 0 || c.MaxPixels > 100_000_000 {
		bad("MaxPixels", "must be in 1..100000000, got %d", c.MaxPixels)
	}
	if c.MaxSamplesPerToken < 2 || c.MaxSamplesPerToken > 100 {
		bad("MaxSamplesPerToken", "must be in 2..100, got %d", c.MaxSamplesPerToken)
	}
	if c.MaxHeldSamples < c.MaxSamplesPerToken || c.MaxHeldSamples > 1_000_000 {
		bad("MaxHeldSamples", "must be in MaxSamplesPerToken..1000000, got %d", c.MaxHeldSamples)
	}
	if c.JobTimeout <= 0 {
		bad("JobTimeout", "must be greater than zero")
	}
	for _, th := range []struct {
		key string
		v   float64
	}{{"VerifyThreshold", c.VerifyThreshold}, {"IdentifyThreshold", c.IdentifyThreshold}} {
		if math.IsNaN(th.v) || th.v <= 0 || th.v >= 1 {
			bad(th.key, "must be in (0, 1), got %g", th.v)
		}
	}
	if c.MaxTemplatesPerClass < 1 || c.MaxTemplatesPerClass > 1000 {
		bad("MaxTemplatesPerClass", "must be in 1..1000, got %d", c.MaxTemplatesPerClass)
	}
	if c.LockoutFailures < 1 {
		bad("LockoutFailures", "must be at least 1, got %d", c.LockoutFailures)
	}
	if c.LockoutWindow <= 0 {
		bad("LockoutWindow", "must be greater than zero")
	}
	if c.AuthFailures < 1 {
		bad("AuthFailures", "must be at least 1, got %d", c.AuthFailures)
	}
	if c.AuthWindow <= 0 {
		bad("AuthWindow", "must be greater than zero")
	}
	if c.MaxAuthLockout < c.AuthWindow {
		bad("MaxAuthLockout", "must be at least AuthWindow")
	}
	if len(c.Version) > 64 || len(c.Label) > 128 {
		bad("Version", "and 'Label' must be short")
	}
	return errors.Join(errs...)
}

// originOf returns scheme://host[:port] of an absolute http(s) URL, lower
// case, the form browsers send in Origin.
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" || u.User != nil {
		return "", errors.New("no host, or user info")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// checkHostEntry accepts "host" or "host:port" ("[::1]:8080").
func checkHostEntry(h string) error {
	if h == "" || strings.ContainsAny(h, "/ @?#") {
		return errors.New("not a host")
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" || port == "" {
			return errors.New("empty host or port")
		}
	}
	return nil
}

// hostPolicy decides which Host headers are accepted.
type hostPolicy struct {
	exact   map[string]bool // "host:port"
	anyPort map[string]bool // "host"
}

func newHostPolicy(cfg Config) hostPolicy {
	p := hostPolicy{exact: map[string]bool{}, anyPort: map[string]bool{}}
	entries := cfg.AllowedHosts
	if len(entries) == 0 {
		u, _ := url.Parse(cfg.PublicURL)
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		entries = []string{u.Host}
		for _, h := range []string{"localhost", "127.0.0.1", "[::1]"} {
			entries = append(entries, h+":"+port)
			if port == "80" && u.Scheme == "http" || port == "443" && u.Scheme == "https" {
				entries = append(entries, h) // browsers omit the default port
			}
		}
	}
	for _, e := range entries {
		e = strings.ToLower(e)
		if _, _, err := net.SplitHostPort(e); err == nil {
			p.exact[e] = true
		} else {
			p.anyPort[strings.Trim(e, "[]")] = true
		}
	}
	return p
}

func (p hostPolicy) allows(host string) bool {
	host = strings.ToLower(host)
	if host == "" {
		return false
	}
	if p.exact[host] {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	return p.anyPort[strings.Trim(h, "[]")]
}
