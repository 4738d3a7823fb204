package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/token"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/store"
)

// Kinds of service errors, one per HTTP status. Service methods return an
// *Error whose Kind is one of these (or a more specific error below that
// wraps one); test with errors.Is.
var (
	ErrBadRequest   = errors.New("bad request")  // 400
	ErrUnauthorized = errors.New("unauthorized") // 401
	ErrForbidden    = errors.New("forbidden")    // 403
	ErrNotFound     = errors.New("not found")    // 404
	ErrLockedOut    = errors.New("locked out")   // 429, with Retry-After
	ErrUnavailable  = errors.New("unavailable")  // 503
	ErrClosed       = errors.New("server closed")
)

// Specific conditions.
var (
	ErrNoSamples      = kind(ErrBadRequest, "no samples uploaded")
	ErrTooManySamples = kind(ErrBadRequest, "too many samples uploaded")
	ErrTriesExhausted = kind(ErrForbidden, "maxtries exhausted")
	ErrTaskNotAllowed = kind(ErrForbidden, "task not allowed")
	ErrPartition      = kind(ErrForbidden, "partition not allowed")
	ErrBadCredentials = kind(ErrForbidden, "wrong credentials")
)

type kindErr struct {
	parent error
	msg    string
}

func (k *kindErr) Error() string { return k.msg }
func (k *kindErr) Unwrap() error { return k.parent }

func kind(parent error, msg string) error { return &kindErr{parent: parent, msg: msg} }

// Error is a service error. Message is safe to show to clients (it becomes
// {"Message":…}); Err is the cause, for logs only.
type Error struct {
	Kind       error
	Message    string
	RetryAfter time.Duration // for ErrLockedOut
	Err        error
}

func (e *Error) Error() string {
	s := "api: " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is see the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func newError(k error, msg string, cause error) *Error {
	return &Error{Kind: k, Message: msg, Err: cause}
}

// Client-facing messages. They never say more than the status does about
// why a token or a secret was refused.
const (
	msgBadToken       = "invalid or expired token"
	msgNoBasic        = "Basic authentication required"
	msgBadCredentials = "wrong credentials"
	msgPartition      = "the app may not access this storage or partition"
	msgTask           = "the token does not allow this task"
	msgTries          = "maxtries exhausted"
	msgNoSamples      = "no samples uploaded with this token"
	msgTooMany        = "too many samples uploaded with this token"
	msgHeldFull       = "too busy: too many samples held or in flight; try again later"
	msgVerifyLocked   = "too many failed verifications of this class; try again later"
	msgAuthLocked     = "too many failed logins; try again later"
	msgHost           = "host not allowed"
	msgOrigin         = "origin not allowed"
	msgRoute          = "no such route"
	msgMethod         = "method not allowed"
	msgInternal       = "internal server error"
	msgClosed         = "the agent is shutting down"
	msgTimeout        = "ExecutionOfJobTimedOut"
	msgBodyTooLarge   = "request body too large"
	msgSyncFull       = "SyncOutboxFull" // the sync outbox is at its bounds: enrollments wait for the centre
)

// statusOf maps an error to its HTTP status and client message.
func statusOf(err error) (int, string) {
	var e *Error
	if errors.As(err, &e) {
		return kindStatus(e.Kind), e.Message
	}
	var se *bws.SampleError
	switch {
	case errors.As(err, &se):
		return http.StatusBadRequest, se.Code()
	case errors.Is(err, imgio.ErrTooLarge), errors.Is(err, imgio.ErrUnsupported), errors.Is(err, imgio.ErrEmpty):
		return http.StatusBadRequest, bws.ErrInvalidSampleData.Error()
	case errors.Is(err, token.ErrTaskNotAllowed):
		return http.StatusForbidden, msgTask
	case errors.Is(err, token.ErrInvalidToken):
		return http.StatusUnauthorized, msgBadToken
	case errors.Is(err, store.ErrTriesExhausted):
		return http.StatusForbidden, msgTries
	case errors.Is(err, bws.ErrInvalidBCID):
		return http.StatusBadRequest, "invalid BCID"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, msgTimeout
	}
	return http.StatusInternalServerError, msgInternal
}

func kindStatus(k error) int {
	switch {
	case errors.Is(k, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(k, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(k, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(k, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(k, ErrLockedOut):
		return http.StatusTooManyRequests
	case errors.Is(k, ErrUnavailable), errors.Is(k, ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
