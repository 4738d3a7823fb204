// Package agentproc runs a real bwsagent process for the reliability
// harnesses (crash safety, faults, load): it builds the binary, starts
// 'bwsagent serve' on a data directory and a loopback port, finds it
// through its admin socket, kills or stops it, and plays the BWS client
// calls (token, upload, enroll/verify, isenrolled) against it.
package agentproc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/config"
)

// Build compiles ./cmd/bwsagent of the module at root into dir and returns
// the binary's path.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "bwsagent")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/bwsagent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/bwsagent: %w\n%s", err, out)
	}
	return bin, nil
}

// Config is how to start the agent.
type Config struct {
	Bin       string
	DataDir   string
	ModelsDir string
	// Workers is the face-model workers; zero: 1.
	Workers int
	// Log receives the agent's stderr; nil: discarded.
	Log io.Writer
	// Args are extra 'serve' flags.
	Args []string
	// ReadyTimeout bounds the wait for the admin socket to report ready;
	// zero: one minute.
	ReadyTimeout time.Duration
}

// Proc is a running agent.
type Proc struct {
	cmd    *exec.Cmd
	PID    int
	APIURL string // the BWS routes' base URL, with a trailing slash
	URL    string // the listener's base URL

	done    chan struct{}
	waitErr error
}

// Start starts 'bwsagent serve' on 127.0.0.1 with a free port and waits
// until its admin socket reports it ready.
func Start(ctx context.Context, c Config) (*Proc, error) {
	workers := c.Workers
	if workers <= 0 {
		workers = 1
	}
	args := append([]string{"serve", "--data-dir", c.DataDir, "--listen", "127.0.0.1:0",
		"--workers", strconv.Itoa(workers), "--log-level", "warn"}, c.Args...)
	if c.ModelsDir != "" {
		args = append(args, "--models-dir", c.ModelsDir)
	}
	cmd := exec.Command(c.Bin, args...)
	cmd.Env = append(os.Environ(), "OPENCV_LOG_LEVEL=ERROR")
	cmd.Stdout, cmd.Stderr = c.Log, c.Log
	// An agent must not outlive a harness that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, PID: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	timeout := c.ReadyTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	if err := p.waitReady(ctx, SocketPath(c.DataDir), timeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// SocketPath is the admin socket of the data directory.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, config.AdminSocketName) }

func (p *Proc) waitReady(ctx context.Context, socket string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := admin.Dial(ctx, socket); err == nil {
			st, err := c.Status(ctx)
			c.Close()
			if err == nil && st.Ready && st.PID == p.PID {
				p.APIURL, p.URL = st.APIURL, st.URL
				if !strings.HasSuffix(p.APIURL, "/") {
					p.APIURL += "/"
				}
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("agent exited before it was ready: %v", p.waitErr)
		case <-deadline.C:
			return fmt.Errorf("agent not ready after %v", timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a graceful exit; the error is the exit
// status (nil: clean).
func (p *Proc) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	return p.waitErr
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// AddApp creates an app in the store of a stopped agent and returns its
// secret; the store is created if needed.
func AddApp(ctx context.Context, dataDir, id, storage string, partitions []int) (string, error) {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg, err := cfg.Resolve(nil)
	if err != nil {
		return "", err
	}
	svc, err := admin.Connect(ctx, cfg, true)
	if err != nil {
		return "", err
	}
	defer svc.Close()
	_, secret, err := svc.AddApp(ctx, admin.NewApp{ID: id, Name: id, Storage: storage, Partitions: partitions})
	return secret, err
}

// DataURL reads an image file as a data URL, the form /upload takes.
func DataURL(path string) (string, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	mime := http.DetectContentType(b)
	if !strings.HasPrefix(mime, "image/") {
		return "", nil, fmt.Errorf("%s: not an image (%s)", path, mime)
	}
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b), b, nil
}

// Client plays BWS client calls for one app.
type Client struct {
	Base        string // Proc.APIURL
	App, Secret string
	HTTP        *http.Client
}

// StatusError is a non-200 answer.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body) }

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, route string, q url.Values, body string, auth func(*http.Request)) ([]byte, error) {
	u := c.Base + route
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	auth(req)
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return b, nil
}

func (c *Client) basic(r *http.Request) { r.SetBasicAuth(c.App, c.Secret) }

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// Token issues a token for task (enroll, verify, identify) without
// liveness detection.
func (c *Client) Token(ctx context.Context, task, bcid string) (string, error) {
	q := url.Values{"id": {c.App}, "bcid": {bcid}, "task": {task}, "livedetection": {"false"}}
	b, err := c.do(ctx, http.MethodGet, "token", q, "", c.basic)
	return strings.TrimSpace(string(b)), err
}

// Upload posts one sample and fails unless it was accepted.
func (c *Client) Upload(ctx context.Context, tok, dataURL string, index int) error {
	q := url.Values{"tag": {"any"}, "index": {strconv.Itoa(index)}}
	b, err := c.do(ctx, http.MethodPost, "upload", q, dataURL, bearer(tok))
	if err != nil {
		return err
	}
	var res struct {
		Accepted bool
		Error    string
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return err
	}
	if !res.Accepted {
		return fmt.Errorf("upload not accepted: %s", res.Error)
	}
	return nil
}

// Perform calls /enroll or /verify and fails unless it succeeded.
func (c *Client) Perform(ctx context.Context, op, tok string) error {
	b, err := c.do(ctx, http.MethodGet, op, nil, "", bearer(tok))
	if err != nil {
		return err
	}
	var res struct {
		Success bool
		Error   string
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return err
	}
	if !res.Success {
		return fmt.Errorf("%s not successful: %s", op, res.Error)
	}
	return nil
}

// Flow is a whole BWS flow: a token for op, the samples uploaded in
// parallel, then the operation.
func (c *Client) Flow(ctx context.Context, op, bcid string, samples []string) error {
	tok, err := c.Token(ctx, op, bcid)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	errs := make([]error, len(samples))
	var wg sync.WaitGroup
	for i, s := range samples {
		wg.Go(func() { errs[i] = c.Upload(ctx, tok, s, i+1) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := c.Perform(ctx, op, tok); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// IsEnrolled calls /isenrolled: true on 200, false on 404.
func (c *Client) IsEnrolled(ctx context.Context, bcid string) (bool, error) {
	_, err := c.do(ctx, http.MethodGet, "isenrolled", url.Values{"bcid": {bcid}}, "", c.basic)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// ContainsAny reports the first file under dir whose bytes contain one of
// the needles, for proving that raw samples never reach the disk.
func ContainsAny(dir string, needles [][]byte) (string, error) {
	var found string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || found != "" || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				found = path
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found, err
}

// Needles are distinctive pieces of a sample as uploaded: raw bytes from
// the middle of the image and the same region in its base64 text.
func Needles(raw []byte) [][]byte {
	var out [][]byte
	const n = 48
	b64 := []byte(base64.StdEncoding.EncodeToString(raw))
	for _, frac := range []int{3, 2} {
		if i := len(raw) / frac; i+n <= len(raw) {
			out = append(out, raw[i:i+n])
		}
		if i := len(b64) / frac; i+n <= len(b64) {
			out = append(out, b64[i:i+n])
		}
	}
	return out
}

// Buffer collects an agent's output: safe for the exec package's copying
// goroutine to write while a test reads it (a bytes.Buffer is not).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns a copy of everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Bytes returns a copy of everything written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
