package preview

import (
	"net/http"
	"net/url"
	"strings"
)

// OriginPolicy decides which browser origins may open the preview socket
// (and, wired by the daemon, call the session API). Browsers always send
// Origin on websocket handshakes, and a websocket is not protected by CORS:
// without this check any web page the kiosk's browser visits could read
// the camera (cross-site websocket hijacking).
type OriginPolicy struct {
	// Allowed lists exact origins such as "http://localhost:8080"
	// (scheme://host[:port], compared case-insensitively).
	Allowed []string
	// SameHost also allows an origin whose host:port equals the request's
	// Host header: the agent's own pages. Default true via NewOriginPolicy.
	SameHost bool
}

// NewOriginPolicy allows the agent's own pages plus allowed.
func NewOriginPolicy(allowed ...string) OriginPolicy {
	return OriginPolicy{Allowed: allowed, SameHost: true}
}

// Allow reports whether r may proceed. Requests without Origin come from
// non-browser clients (curl, the kiosk app's backend), which could send
// any Origin anyway, so they are allowed; the listener is local.
func (p OriginPolicy) Allow(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	o = strings.ToLower(strings.TrimRight(o, "/"))
	for _, a := range p.Allowed {
		if strings.EqualFold(strings.TrimRight(a, "/"), o) {
			return true
		}
	}
	if !p.SameHost {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
