package sessiontest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/session"
	"github.com/bwsagent/bwsagent/face/geom"
)

// FakeBWS stands in for the BWS service: it measures each upload's head
// pose with Tracker and, at the task call, checks what the real service's
// challenge-response check checks — consecutive samples moved at least
// MinMove degrees, in the tagged quadrant (any direction for "any"). It
// speaks the contract over HTTP too (Handler), for browser tests.
type FakeBWS struct {
	Tracker session.Tracker
	// MinMove is the smallest accepted move in degrees (default 3).
	MinMove float64
	// AppID and AppSecret are the Basic credentials /token accepts.
	AppID, AppSecret string
	// Challenge, when set, is put into tokens the Handler issues with
	// challenge=true (default: a fixed [[left right up]…]).
	Challenge bws.Challenge

	mu       sync.Mutex
	uploads  map[string][]sample
	tries    map[string]int
	results  map[string]session.Result
	enrolled map[string]bool
	tokens   map[string]bws.Task
	Calls    []string // "upload any 0", "enroll" … in order
}

type sample struct {
	tag   string
	index int
	pose  geom.Pose
}

func (f *FakeBWS) init() {
	if f.uploads == nil {
		f.uploads, f.tries, f.results = map[string][]sample{}, map[string]int{}, map[string]session.Result{}
		f.enrolled, f.tokens = map[string]bool{}, map[string]bws.Task{}
	}
}

// Upload decodes the data URL and measures the face.
func (f *FakeBWS) Upload(ctx context.Context, token string, dataURL []byte, tag string, index int) (session.UploadResult, error) {
	s, err := bws.ParseDataURL(dataURL, bws.DefaultMaxSampleBytes)
	if err != nil {
		return session.UploadResult{}, &session.StatusError{Route: "upload", Status: 400, Message: err.Error()}
	}
	m, err := gocv.IMDecode(s.Data, gocv.IMReadColor)
	if err != nil || m.Empty() {
		_ = m.Close()
		return session.UploadResult{}, &session.StatusError{Route: "upload", Status: 400, Message: "undecodable image"}
	}
	defer m.Close()
	fc, ok, err := f.Tracker.Track(ctx, m)
	if err != nil {
		return session.UploadResult{}, fmt.Errorf("fake bws: track: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	f.Calls = append(f.Calls, fmt.Sprintf("upload %s %d", tag, index))
	if !ok {
		return session.UploadResult{Accepted: false, Error: "NoFaceFound", Warnings: []string{}}, nil
	}
	f.uploads[token] = append(f.uploads[token], sample{tag: tag, index: index, pose: fc.Pose})
	return session.UploadResult{Accepted: true, Warnings: []string{}}, nil
}

// Perform consumes the token's samples and judges them.
func (f *FakeBWS) Perform(_ context.Context, token string, op bws.Operation) (session.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	f.Calls = append(f.Calls, op.String())
	ss := f.uploads[token]
	delete(f.uploads, token)
	if len(ss) == 0 {
		return session.Result{}, &session.StatusError{Route: op.String(), Status: 400, Message: "no samples uploaded"}
	}
	f.tries[token]++
	slices.SortStableFunc(ss, func(a, b sample) int { return a.index - b.index })
	res := f.judge(ss)
	if res.Success && op == bws.OpEnroll {
		f.enrolled[token] = true
	}
	f.results[token] = res
	return res, nil
}

func (f *FakeBWS) judge(ss []sample) session.Result {
	minMove := f.MinMove
	if minMove == 0 {
		minMove = 3
	}
	if len(ss) < 2 {
		return session.Result{Success: false, Error: "NotEnoughSamples"}
	}
	challenge := slices.ContainsFunc(ss, func(s sample) bool { return s.tag != "any" })
	for i := 1; i < len(ss); i++ {
		ang, mag := geom.MotionDirection(ss[i-1].pose, ss[i].pose)
		if mag < minMove || (ss[i].tag != "any" && geom.Quadrant(ang) != ss[i].tag) {
			if challenge {
				return session.Result{Success: false, Error: "ChallengeResponseFailed"}
			}
			return session.Result{Success: false, Error: "LiveDetectionFailed"}
		}
	}
	return session.Result{Success: true}
}

// Enrolled counts successful enrollments.
func (f *FakeBWS) Enrolled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.enrolled)
}

// CallLog returns Calls so far.
func (f *FakeBWS) CallLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Calls)
}

// Token implements session.TokenIssuer with the fake's own credentials.
func (f *FakeBWS) Token(_ context.Context, r session.TokenRequest) (string, error) {
	if subtle.ConstantTimeCompare([]byte(r.AppID+"\x00"+r.AppSecret), []byte(f.AppID+"\x00"+f.AppSecret)) != 1 || f.AppID == "" {
		return "", &session.StatusError{Route: "token", Status: http.StatusForbidden, Message: "wrong credentials"}
	}
	tries := r.MaxTries
	if tries == 0 {
		tries = 3
	}
	var ch bws.Challenge
	if r.Challenge {
		ch = f.Challenge
		if ch == nil {
			ch = bws.Challenge{{bws.Left, bws.Right, bws.Up}, {bws.Right, bws.Left, bws.Down}, {bws.Up, bws.Down, bws.Left}}
		}
		for len(ch) < tries {
			ch = append(ch, ch[len(ch)-1])
		}
		ch = ch[:tries]
	}
	return Token(r.Op, tries, ch, r.BCID)
}

// Handler serves the contract subset a browser client needs, under the
// prefix it is mounted at (strip it first): GET token (Basic), POST
// upload, GET enroll|verify|identify|livenessdetection (Bearer), GET
// result (Basic).
func (f *FakeBWS) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := strings.Trim(r.URL.Path, "/")
		q := r.URL.Query()
		writeJSON := func(status int, v any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(v)
		}
		fail := func(err error) {
			var se *session.StatusError
			if errors.As(err, &se) {
				writeJSON(se.Status, map[string]string{"Message": se.Message})
				return
			}
			writeJSON(http.StatusInternalServerError, map[string]string{"Message": err.Error()})
		}
		bearer := func() (string, bool) {
			a := r.Header.Get("Authorization")
			for _, p := range []string{"Bearer ", "JWT "} {
				if strings.HasPrefix(a, p) {
					return strings.TrimPrefix(a, p), true
				}
			}
			writeJSON(http.StatusUnauthorized, map[string]string{"Message": "invalid or expired token"})
			return "", false
		}
		switch {
		case route == "token" && r.Method == http.MethodGet:
			id, secret, ok := r.BasicAuth()
			if !ok {
				writeJSON(http.StatusUnauthorized, map[string]string{"Message": "Basic authentication required"})
				return
			}
			op, err := bws.ParseOperation(q.Get("task"))
			if err != nil {
				writeJSON(http.StatusBadRequest, map[string]string{"Message": err.Error()})
				return
			}
			tries, _ := strconv.Atoi(q.Get("maxtries"))
			tok, err := f.Token(r.Context(), session.TokenRequest{AppID: id, AppSecret: secret, BCID: q.Get("bcid"), Op: op,
				MaxTries: tries, LiveDetection: true, Challenge: q.Get("challenge") == "true"})
			if err != nil {
				fail(err)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, tok)
		case route == "upload" && r.Method == http.MethodPost:
			tok, ok := bearer()
			if !ok {
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
			if err != nil {
				fail(err)
				return
			}
			idx, _ := strconv.Atoi(q.Get("index"))
			tag := q.Get("tag")
			if tag == "" {
				tag = "any"
			}
			res, err := f.Upload(r.Context(), tok, body, tag, idx)
			if err != nil {
				fail(err)
				return
			}
			writeJSON(http.StatusOK, res)
		case route == "enroll" || route == "verify" || route == "identify" || route == "livenessdetection":
			tok, ok := bearer()
			if !ok {
				return
			}
			op, _ := bws.ParseOperation(route)
			res, err := f.Perform(r.Context(), tok, op)
			if err != nil {
				fail(err)
				return
			}
			writeJSON(http.StatusOK, res)
		default:
			writeJSON(http.StatusNotFound, map[string]string{"Message": "not found"})
		}
	})
}
