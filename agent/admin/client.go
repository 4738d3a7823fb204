package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/store"
)

// Client is the Service of a running agent, over its admin socket.
type Client struct {
	path string
	http *http.Client
}

// maxReplyBody bounds JSON replies (class lists of a big store included).
const maxReplyBody = 64 << 20

// Dial connects to the admin socket at path. It fails at once when no
// agent listens (errors.Is(err, ErrNotRunning)).
func Dial(ctx context.Context, path string) (*Client, error) {
	if err := checkPathLen(path); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("admin socket %s: %w", path, ErrNotRunning)
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("admin socket: %w (run as the agent's user, e.g. sudo -u bwsagent, or as root)", err)
		}
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	c.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    1,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{path: path, http: &http.Client{Transport: tr}}, nil
}

// ErrNotRunning: nothing answers on the admin socket.
var ErrNotRunning = errors.New("no agent is running")

// Connect returns the running agent's Service, or — when no agent runs —
// a Local on the store of cfg (resolved). create is passed to OpenLocal.
func Connect(ctx context.Context, cfg config.Config, create bool) (Service, error) {
	c, err := Dial(ctx, cfg.AdminSocket())
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	l, err := OpenLocal(ctx, cfg, create)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w (if the agent is starting, retry in a moment)", err)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Close implements Service.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// call does one JSON round trip; out may be nil.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return replyError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReplyBody)).Decode(out); err != nil {
		return fmt.Errorf("admin reply: %w", err)
	}
	return nil
}

// replyError turns an error reply back into an error matching the same
// sentinel the agent saw.
func replyError(resp *http.Response) error {
	var rep errorReply
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxRequestBody))
	if err := json.Unmarshal(b, &rep); err != nil || rep.Error == "" {
		return fmt.Errorf("%w: %s: %s", ErrRemote, resp.Status, strings.TrimSpace(string(b)))
	}
	for _, k := range errorKinds {
		if k.kind == rep.Kind {
			return &remoteError{msg: rep.Error, kind: k.err}
		}
	}
	return &remoteError{msg: rep.Error, kind: ErrRemote}
}

// remoteError is an agent's error with its sentinel restored.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// Status implements Service.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// AddApp implements Service.
func (c *Client) AddApp(ctx context.Context, a NewApp) (App, string, error) {
	var rep addAppReply
	err := c.call(ctx, http.MethodPost, "/v1/apps", a, &rep)
	return rep.App, rep.Secret, err
}

// Apps implements Service.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var apps []App
	err := c.call(ctx, http.MethodGet, "/v1/apps", nil, &apps)
	return apps, err
}

// RemoveApp implements Service.
func (c *Client) RemoveApp(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/apps/"+url.PathEscape(id), nil, nil)
}

// RotateAppSecret implements Service.
func (c *Client) RotateAppSecret(ctx context.Context, id string) (string, error) {
	var rep secretReply
	err := c.call(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(id)+"/rotate-secret", nil, &rep)
	return rep.Secret, err
}

// Classes implements Service.
func (c *Client) Classes(ctx context.Context, storage string, partition int) ([]Class, error) {
	q := url.Values{}
	if storage != "" {
		q.Set("storage", storage)
	}
	if partition >= 0 {
		q.Set("partition", strconv.Itoa(partition))
	}
	var cs []Class
	err := c.call(ctx, http.MethodGet, "/v1/classes?"+q.Encode(), nil, &cs)
	return cs, err
}

// Class implements Service.
func (c *Client) Class(ctx context.Context, b bws.BCID) (ClassDetail, error) {
	var d ClassDetail
	err := c.call(ctx, http.MethodGet, "/v1/classes/"+url.PathEscape(bcidDots(b)), nil, &d)
	return d, err
}

// DeleteClass implements Service.
func (c *Client) DeleteClass(ctx context.Context, b bws.BCID) error {
	return c.call(ctx, http.MethodDelete, "/v1/classes/"+url.PathEscape(bcidDots(b)), nil, nil)
}

// bcidDots is the dotted form, one path segment.
func bcidDots(b bws.BCID) string {
	return b.Storage + "." + strconv.Itoa(b.Partition) + "." + strconv.FormatInt(b.ClassID, 10)
}

// Backup implements Service. It fails unless the agent reports, after the
// last byte, that the snapshot completed.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, replyError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	res := resp.Trailer.Get(trailerBackup)
	size, ok := strings.CutPrefix(res, "ok ")
	if !ok {
		if res == "" {
			res = "the agent did not finish the backup"
		}
		return 0, fmt.Errorf("backup: %s", res)
	}
	n, _ := strconv.ParseInt(size, 10, 64)
	return n, nil
}

// RotateSigningKey implements Service.
func (c *Client) RotateSigningKey(ctx context.Context) (KeyInfo, error) {
	var k KeyInfo
	err := c.call(ctx, http.MethodPost, "/v1/keys/signing/rotate", nil, &k)
	return k, err
}

// RotateTemplateKey implements Service.
func (c *Client) RotateTemplateKey(ctx context.Context) (int, error) {
	var rep resealReply
	err := c.call(ctx, http.MethodPost, "/v1/keys/template/rotate", nil, &rep)
	return rep.Resealed, err
}
