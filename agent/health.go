package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Healthy is the watchdog's check: nil while the agent serves, its HTTP
// server answers (httpHealthy) and its camera, when one is configured, is
// not stalled (see camera.captureHealth for why a missing camera does not
// count). An error says what is wrong; errors.Is(err, ErrCaptureStalled)
// tells a hung camera apart.
func (a *Agent) Healthy() error {
	if !a.ready.Load() {
		return errors.New("not serving")
	}
	if err := a.httpHealthy(); err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	return a.cam.captureHealth()
}

// healthProbeTimeout bounds the self-probe of /healthz: a server that
// cannot answer a trivial route within it is wedged.
const healthProbeTimeout = 2 * time.Second

// httpHealthy GETs the agent's own /healthz over a new connection to the
// listener's address, which proves that the accept loop, the middleware
// and the handlers run. Any answer below 500 counts: a Host refused by a
// strict allow-list still went through all of them.
func (a *Agent) httpHealthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), healthProbeTimeout)
	defer cancel()
	network, addr := a.ln.Addr().Network(), a.ln.Addr().String()
	if network == "tcp" {
		addr = dialable(addr)
	}
	tr := &http.Transport{
		// A pooled connection would bypass the accept loop.
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	// The public URL's host passes the default Host allow-list; the
	// connection goes to the listener whatever the URL says (a reverse
	// proxy's https name included).
	host := addr
	if u, err := url.Parse(a.baseURL); err == nil && u.Host != "" {
		host = u.Host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("GET /healthz: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= http.StatusInternalServerError {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

// dialable turns a wildcard listen address into the loopback address that
// reaches it.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
