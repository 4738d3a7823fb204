package admin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bwsagent/bwsagent/agent/outbox"
	"github.com/bwsagent/bwsagent/store"
	"github.com/google/uuid"
)

// OutboxRequest selects the jobs of an outbox operation.
type OutboxRequest struct {
	// IDs are job ids (retry, drop).
	IDs []string `json:"ids,omitempty"`
	// All: every dead letter instead of IDs (retry, drop).
	All bool `json:"all,omitempty"`
	// Dead lists the dead letters instead of the pending jobs (list).
	Dead bool `json:"dead,omitempty"`
	// JSON lists one JSON object per line instead of a table (list).
	JSON bool `json:"json,omitempty"`
}

// OutboxReply is what an outbox operation printed and how many jobs it
// changed. Failed joins the errors of single jobs (an id not found, a job
// whose samples expired); the others were handled.
type OutboxReply struct {
	Output string `json:"output"`
	Count  int    `json:"count"`
	Failed string `json:"failed,omitempty"`
}

// checkJobIDs refuses a request without jobs or with malformed ids before
// anything changes.
func checkJobIDs(req OutboxRequest) error {
	if req.All != (len(req.IDs) == 0) {
		return fmt.Errorf("name job ids or all dead letters, not both or neither: %w", store.ErrInvalid)
	}
	for _, id := range req.IDs {
		if _, err := uuid.Parse(id); err != nil {
			return fmt.Errorf("job id %q: %w", id, store.ErrInvalid)
		}
	}
	return nil
}

// OutboxList implements Service.
func (l *Local) OutboxList(ctx context.Context, req OutboxRequest) (OutboxReply, error) {
	var buf bytes.Buffer
	if err := outbox.List(ctx, l.db, &buf, outbox.ListOptions{Dead: req.Dead, JSON: req.JSON}); err != nil {
		return OutboxReply{}, err
	}
	return OutboxReply{Output: buf.String()}, nil
}

// OutboxRetry implements Service.
func (l *Local) OutboxRetry(ctx context.Context, req OutboxRequest) (OutboxReply, error) {
	return l.outboxChange(ctx, "outbox.retry", req, outbox.Retry)
}

// OutboxDrop implements Service.
func (l *Local) OutboxDrop(ctx context.Context, req OutboxRequest) (OutboxReply, error) {
	return l.outboxChange(ctx, "outbox.drop", req, outbox.Drop)
}

func (l *Local) outboxChange(ctx context.Context, action string, req OutboxRequest,
	change func(ctx context.Context, db *store.DB, w io.Writer, ids []string, all bool) (int, error)) (OutboxReply, error) {
	if err := checkJobIDs(req); err != nil {
		return OutboxReply{}, err
	}
	var buf bytes.Buffer
	n, err := change(ctx, l.db, &buf, req.IDs, req.All)
	rep := OutboxReply{Output: buf.String(), Count: n}
	if err != nil {
		rep.Failed = err.Error()
	}
	l.audit(ctx, action, "", fmt.Sprintf("%d jobs", n), err)
	if n > 0 && l.hooks.OutboxChanged != nil {
		l.hooks.OutboxChanged()
	}
	return rep, nil
}

// OutboxList implements Service.
func (c *Client) OutboxList(ctx context.Context, req OutboxRequest) (OutboxReply, error) {
	q := url.Values{"dead": {strconv.FormatBool(req.Dead)}, "json": {strconv.FormatBool(req.JSON)}}
	var rep OutboxReply
	err := c.call(ctx, http.MethodGet, "/v1/outbox?"+q.Encode(), nil, &rep)
	return rep, err
}

// OutboxRetry implements Service.
func (c *Client) OutboxRetry(ctx context.Context, req OutboxRequest) (OutboxReply, error) {
	var rep OutboxReply
	err := c.call(ctx, http.MethodPost, "/v1/outbox/retry", req, &rep)
	return rep, err
}

// OutboxDrop implements Service.
func (c *Client) OutboxDrop(ctx context.Context, req OutboxRequest) (OutboxReply, error) {
	var rep OutboxReply
	err := c.call(ctx, http.MethodPost, "/v1/outbox/drop", req, &rep)
	return rep, err
}

// outboxRoutes adds the outbox operations to the socket's routes.
func (s *Server) outboxRoutes(mux *http.ServeMux, svc Service) {
	mux.HandleFunc("GET /v1/outbox", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rep, err := svc.OutboxList(r.Context(), OutboxRequest{Dead: q.Get("dead") == "true", JSON: q.Get("json") == "true"})
		s.reply(w, r, rep, err)
	})
	for op, fn := range map[string]func(context.Context, OutboxRequest) (OutboxReply, error){
		"retry": svc.OutboxRetry, "drop": svc.OutboxDrop,
	} {
		mux.HandleFunc("POST /v1/outbox/"+op, func(w http.ResponseWriter, r *http.Request) {
			var req OutboxRequest
			if err := decode(r, &req); err != nil {
				s.reply(w, r, nil, err)
				return
			}
			rep, err := fn(r.Context(), req)
			s.reply(w, r, rep, err)
		})
	}
}
