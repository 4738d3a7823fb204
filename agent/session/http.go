package session

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// OpenAPI is the fragment documenting the session routes (paths and
// schemas), for merging into the agent's OpenAPI file.
//
//go:embed openapi.json
var OpenAPI []byte

const maxStartBody = 64 << 10

// Handler serves the local session API:
//
//	POST   /sessions               start (StartRequest) → 201 State
//	GET    /sessions/{id}          State
//	DELETE /sessions/{id}          cancel → 200 State
//	GET    /sessions/{id}/events   server-sent events, from the start (or Last-Event-ID)
//
// Mount it at "/sessions" and "/sessions/" on the agent's mux.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sessions", m.handleStart)
	mux.HandleFunc("GET /sessions/{id}", m.handleGet)
	mux.HandleFunc("DELETE /sessions/{id}", m.handleCancel)
	mux.HandleFunc("GET /sessions/{id}/events", m.handleEvents)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.cfg.AllowRequest != nil && !m.cfg.AllowRequest(r) {
			writeErr(w, http.StatusForbidden, "origin not allowed")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type errorBody struct {
	Message string `json:"Message"`
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (m *Manager) handleStart(w http.ResponseWriter, r *http.Request) {
	// JSON only: a cross-site HTML form cannot send it without a CORS
	// preflight, which this API never answers.
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		writeErr(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxStartBody))
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	var req StartRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	if id, secret, ok := r.BasicAuth(); ok && req.AppID == "" {
		req.AppID, req.AppSecret = id, secret
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	s, err := m.Start(ctx, req)
	switch {
	case err == nil:
		w.Header().Set("Location", "/sessions/"+s.ID())
		writeJSON(w, http.StatusCreated, s.State())
	case errors.Is(err, ErrBusy):
		writeErr(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrBadStart):
		writeErr(w, http.StatusBadRequest, err.Error())
	default:
		var se *StatusError
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
			// The token service refused the credentials or request.
			writeErr(w, se.Status, err.Error())
			return
		}
		m.log.Warn("start session", "err", err)
		writeErr(w, http.StatusBadGateway, err.Error())
	}
}

func (m *Manager) session(w http.ResponseWriter, r *http.Request) (*Session, bool) {
	s, ok := m.Get(r.PathValue("id"))
	if !ok {
		writeErr(w, http.StatusNotFound, ErrNotFound.Error())
	}
	return s, ok
}

func (m *Manager) handleGet(w http.ResponseWriter, r *http.Request) {
	if s, ok := m.session(w, r); ok {
		writeJSON(w, http.StatusOK, s.State())
	}
}

func (m *Manager) handleCancel(w http.ResponseWriter, r *http.Request) {
	s, ok := m.session(w, r)
	if !ok {
		return
	}
	s.cancel()
	// Wait briefly for the run to end, so the answer is final and the
	// camera free for the next session. Waiting for the next event was not
	// enough: an event already on its way could arrive first.
	select {
	case <-s.exited:
	case <-time.After(2 * time.Second):
	case <-r.Context().Done():
	}
	writeJSON(w, http.StatusOK, s.State())
}

// handleEvents streams a session's events as server-sent events: every
// event from the start (or after Last-Event-ID), then live ones, and ends
// after the session's final events.
func (m *Manager) handleEvents(w http.ResponseWriter, r *http.Request) {
	s, ok := m.session(w, r)
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	from := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			from = n + 1
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		evs, changed, done := s.eventsSince(from)
		for _, e := range evs {
			b, err := json.Marshal(flat(e))
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, b); err != nil {
				return
			}
			from = e.Seq + 1
		}
		fl.Flush()
		if done && len(evs) == 0 {
			return
		}
		if done {
			continue // drain what was added with the final state
		}
		select {
		case <-changed:
		case <-keep.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}
