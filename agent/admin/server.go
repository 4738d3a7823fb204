package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/store"
)

// Server serves a Service on a unix socket.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
}

// maxRequestBody bounds admin request bodies (small JSON).
const maxRequestBody = 64 << 10

// Listen binds the socket at path (mode 0600) for svc. A stale socket left
// by a crash is replaced; a live one (another agent answering) is an error.
// Serve starts answering.
func Listen(path string, svc Service, log *slog.Logger) (*Server, error) {
	if err := checkPathLen(path); err != nil {
		return nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket: %w", err)
	}
	// The unix listener removes the file on Close; keep that.
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	// Chmod after bind leaves a short window with the umask's mode: the
	// data directory (0700) covers it, and peers are checked anyway.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	s := &Server{path: path, ln: &peerListener{Listener: ln, log: log}, log: log}
	s.srv = &http.Server{
		Handler:           s.routes(svc),
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: a backup streams for as long as the store is big.
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// maxSocketPath is the longest unix socket path (sun_path, 108 bytes with
// the terminating NUL).
const maxSocketPath = 107

func checkPathLen(path string) error {
	if len(path) > maxSocketPath {
		return fmt.Errorf("admin socket path %s is %d bytes, longer than a unix socket allows (%d): use a shorter data directory",
			path, len(path), maxSocketPath)
	}
	return nil
}

// clearStale removes a socket file nobody answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("admin socket: %s exists and is not a socket; move it away", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("admin socket: another agent answers on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("admin socket: remove stale %s: %w", path, err)
	}
	return nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers until ctx ends or Close is called. Requests in flight
// when ctx ends get a few seconds to finish (a backup is cut short).
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			s.srv.Close()
		}
	})
	defer stop()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("admin socket: %w", err)
}

// Close stops answering at once and removes the socket.
func (s *Server) Close() error {
	err := s.srv.Close()
	// Serve may never have run; the listener then still holds the file.
	s.ln.Close()
	if _, statErr := os.Lstat(s.path); statErr == nil {
		os.Remove(s.path)
	}
	return err
}

func (s *Server) routes(svc Service) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := svc.Status(r.Context())
		s.reply(w, r, st, err)
	})
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		apps, err := svc.Apps(r.Context())
		s.reply(w, r, apps, err)
	})
	mux.HandleFunc("POST /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		var req NewApp
		if err := decode(r, &req); err != nil {
			s.reply(w, r, nil, err)
			return
		}
		app, secret, err := svc.AddApp(r.Context(), req)
		s.reply(w, r, addAppReply{App: app, Secret: secret}, err)
	})
	mux.HandleFunc("DELETE /v1/apps/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, r, struct{}{}, svc.RemoveApp(r.Context(), r.PathValue("id")))
	})
	mux.HandleFunc("POST /v1/apps/{id}/rotate-secret", func(w http.ResponseWriter, r *http.Request) {
		secret, err := svc.RotateAppSecret(r.Context(), r.PathValue("id"))
		s.reply(w, r, secretReply{Secret: secret}, err)
	})
	mux.HandleFunc("GET /v1/classes", func(w http.ResponseWriter, r *http.Request) {
		partition := -1
		if p := r.URL.Query().Get("partition"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 {
				s.reply(w, r, nil, fmt.Errorf("partition %q: %w", p, store.ErrInvalid))
				return
			}
			partition = n
		}
		cs, err := svc.Classes(r.Context(), r.URL.Query().Get("storage"), partition)
		s.reply(w, r, cs, err)
	})
	mux.HandleFunc("GET /v1/classes/{bcid}", func(w http.ResponseWriter, r *http.Request) {
		c, err := bws.ParseBCID(r.PathValue("bcid"))
		if err != nil {
			s.reply(w, r, nil, fmt.Errorf("%w: %w", store.ErrInvalid, err))
			return
		}
		d, err := svc.Class(r.Context(), c)
		s.reply(w, r, d, err)
	})
	mux.HandleFunc("DELETE /v1/classes/{bcid}", func(w http.ResponseWriter, r *http.Request) {
		c, err := bws.ParseBCID(r.PathValue("bcid"))
		if err != nil {
			s.reply(w, r, nil, fmt.Errorf("%w: %w", store.ErrInvalid, err))
			return
		}
		s.reply(w, r, struct{}{}, svc.DeleteClass(r.Context(), c))
	})
	mux.HandleFunc("GET /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		// The outcome goes in a trailer: the status line is long gone when
		// a backup fails halfway.
		w.Header().Set("Trailer", trailerBackup)
		w.Header().Set("Content-Type", "application/octet-stream")
		n, err := svc.Backup(r.Context(), w)
		if err != nil {
			s.log.Warn("backup failed", "err", err)
			w.Header().Set(trailerBackup, "error: "+err.Error())
			return
		}
		w.Header().Set(trailerBackup, "ok "+strconv.FormatInt(n, 10))
	})
	mux.HandleFunc("POST /v1/keys/signing/rotate", func(w http.ResponseWriter, r *http.Request) {
		k, err := svc.RotateSigningKey(r.Context())
		s.reply(w, r, k, err)
	})
	mux.HandleFunc("POST /v1/keys/template/rotate", func(w http.ResponseWriter, r *http.Request) {
		n, err := svc.RotateTemplateKey(r.Context())
		s.reply(w, r, resealReply{Resealed: n}, err)
	})
	s.outboxRoutes(mux, svc)
	return mux
}

const trailerBackup = "X-Backup-Result"

type addAppReply struct {
	App    App    `json:"app"`
	Secret string `json:"secret"`
}

type secretReply struct {
	Secret string `json:"secret"`
}

type resealReply struct {
	Resealed int `json:"resealed"`
}

// errorReply is the body of every failed call.
type errorReply struct {
	Error string `json:"error"`
	Kind  string `json:"kind"` // errorKinds key
}

// errorKinds carry sentinel errors over the socket, so that errors.Is works
// on the client as on the server.
var errorKinds = []struct {
	kind   string
	err    error
	status int
}{
	{"not_found", store.ErrNotFound, http.StatusNotFound},
	{"exists", store.ErrExists, http.StatusConflict},
	{"invalid", store.ErrInvalid, http.StatusBadRequest},
	{"invalid", bws.ErrInvalidBCID, http.StatusBadRequest},
	{"locked", store.ErrLocked, http.StatusConflict},
	{"no_store", ErrNoStore, http.StatusNotFound},
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w: %w", store.ErrInvalid, err)
	}
	return nil
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		rep, status := errorReply{Error: err.Error(), Kind: "internal"}, http.StatusInternalServerError
		for _, k := range errorKinds {
			if errors.Is(err, k.err) {
				rep.Kind, status = k.kind, k.status
				break
			}
		}
		if status == http.StatusInternalServerError {
			s.log.Error("admin call failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(rep)
		return
	}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Warn("admin reply", "err", err)
	}
}
