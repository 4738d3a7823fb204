package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bwsagent/bwsagent/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Clock is the sender's time source, replaceable in tests.
type Clock interface {
	Now() time.Time
	// After behaves like time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configures New. DB, Client and Config are required.
type Options struct {
	DB     *store.DB
	Client Client
	Config Config
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Clock; nil means the system clock.
	Clock Clock
	// Rand returns uniform numbers in [0,1) for the backoff jitter; nil
	// means math/rand/v2. Calls are serialized.
	Rand func() float64
}

// Sender delivers the outbox to the centre. It owns one goroutine, started
// by Start and stopped by Close.
//
// Order: at most one job per class is in flight and a class's jobs go in
// outbox order (store.DB.NextOutbox); up to Config.Concurrency classes are
// delivered at once and do not wait for each other, except that a
// transient failure pauses the whole sender (the centre, not the job, is
// the likely cause) for the backoff delay: no new job starts, those in
// flight finish.
//
// Idempotency of enrollments, which the BWS protocols do not offer: before
// the first enroll call the sender asks the centre about the class and
// records the answer durably in the job's checkpoint. A job that has a
// checkpoint may have reached the centre (a crash, a lost answer, a
// timeout), so before enrolling again the sender asks again: if the class
// went from not enrolled to enrolled, or its template count grew (BWS 3),
// the earlier attempt was applied and the job is marked delivered without
// a second enrollment. The one case this cannot decide is a re-enrollment
// of a class the centre already had, on BWS 2 (no template count): then it
// enrolls again, adding the same samples twice — harmless for matching,
// and only after a crash or lost answer in that window. A centre that is a
// bwsagent can close that gap too by honouring the Idempotency-Key header
// (the job id) that every call carries. Deletions are idempotent by nature
// (a repeated delete of a gone class counts as done).
type Sender struct {
	db     *store.DB
	client Client
	cfg    Config
	log    *slog.Logger
	clock  Clock
	rand   func() float64
	mapper *mapper
	m      *metrics

	notify chan struct{}
	stop   chan struct{}
	done   chan struct{}
	cancel context.CancelFunc
	once   sync.Once

	lastExpire time.Time // owned by the loop goroutine

	// Delivery state, shared by the jobs in flight.
	loopMu     sync.Mutex
	failures   int       // consecutive transient failures
	pauseUntil time.Time // no calls to the centre before this
	lastLogged string    // last failure logged, to log repeats once

	mu     sync.Mutex
	status Status
}

// Status is the sender's state for /status (an extra field, PascalCase like
// the rest of BWS's JSON) and the metrics.
type Status struct {
	Protocol         string     `json:"Protocol"`
	Pending          int        `json:"Pending"`
	DeadLetters      int        `json:"DeadLetters"`
	SampleBytes      int64      `json:"SampleBytes"`
	OldestAgeSeconds float64    `json:"OldestAgeSeconds"`
	Full             bool       `json:"Full"` // new enrollments are being refused
	LastError        string     `json:"LastError,omitempty"`
	LastErrorTime    *time.Time `json:"LastErrorTime,omitempty"`
	LastDelivery     *time.Time `json:"LastDelivery,omitempty"`
	RetryAt          *time.Time `json:"RetryAt,omitempty"` // paused after a transient failure until then
	Delivered        uint64     `json:"Delivered"`         // since start
}

// New checks opts and builds a Sender; nothing runs until Start.
func New(opts Options) (*Sender, error) {
	if opts.DB == nil || opts.Client == nil {
		return nil, errors.New("outbox: DB and Client are required")
	}
	if err := opts.Config.Backoff.Validate("sync.backoff"); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if opts.Config.PollInterval <= 0 || opts.Config.MaxAge <= 0 {
		return nil, errors.New("outbox: 'sync.pollInterval' and 'sync.maxAge' must be greater than zero")
	}
	mp, err := newMapper(opts.Config.Map, opts.Config.MapStrict)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	s := &Sender{
		db:     opts.DB,
		client: opts.Client,
		cfg:    opts.Config,
		log:    opts.Logger,
		clock:  opts.Clock,
		rand:   opts.Rand,
		mapper: mp,
		notify: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "sync")
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.rand == nil {
		s.rand = rand.Float64
	}
	s.status.Protocol = opts.Config.Protocol
	m, err := newMetrics(opts.Registerer, s.Status)
	if err != nil {
		return nil, fmt.Errorf("outbox: metrics: %w", err)
	}
	s.m = m
	return s, nil
}

// Start stores the outbox limits and starts the delivery goroutine. ctx
// bounds the goroutine's life; Close ends it earlier, with a flush.
func (s *Sender) Start(ctx context.Context) error {
	err := s.db.SetOutboxLimits(ctx, store.OutboxLimits{MaxJobs: s.cfg.MaxJobs, MaxBytes: s.cfg.MaxBytes})
	if err != nil {
		return fmt.Errorf("outbox: start: %w", err)
	}
	s.refreshStats(ctx)
	ctx, s.cancel = context.WithCancel(ctx)
	go s.run(ctx)
	return nil
}

// Notify wakes the sender after an enqueue. It never blocks.
func (s *Sender) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Close stops the sender: it delivers what is due for at most
// Config.FlushTimeout, then cancels calls in flight and returns. A job cut
// off stays in the outbox (with its checkpoint) for the next start.
func (s *Sender) Close() error {
	s.once.Do(func() {
		if s.cancel == nil { // never started
			close(s.done)
			return
		}
		close(s.stop)
		t := time.NewTimer(s.cfg.FlushTimeout)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			s.log.Warn("sync flush timed out; the rest is delivered after restart", "timeout", s.cfg.FlushTimeout)
		}
		s.cancel()
		<-s.done
	})
	return nil
}

// Status returns a snapshot.
func (s *Sender) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	return st
}

func (s *Sender) run(ctx context.Context) {
	defer close(s.done)
	for {
		wait := s.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			s.pass(ctx) // the flush; Close cancels ctx when it takes too long
			return
		case <-s.notify:
		case <-s.clock.After(wait):
		}
	}
}

// batch is how many class heads one outbox scan returns.
const batch = 64

// pass delivers what is due and returns how long to wait before the next
// pass (unless notified).
func (s *Sender) pass(ctx context.Context) time.Duration {
	defer s.refreshStats(ctx)
	now := s.clock.Now()
	if pause := s.pausedUntil(); now.Before(pause) {
		return pause.Sub(now)
	}
	if now.Sub(s.lastExpire) >= s.cfg.PollInterval {
		s.lastExpire = now
		n, err := s.db.ExpireOutbox(ctx, now.Add(-s.cfg.MaxAge))
		if err != nil && ctx.Err() == nil {
			s.log.Error("expire outbox", "err", err)
		} else if n > 0 {
			s.m.expired.Add(float64(n))
			s.log.Warn("outbox samples past retention erased; jobs moved to dead letters", "jobs", n, "max_age", s.cfg.MaxAge)
		}
	}
	for {
		if ctx.Err() != nil {
			return s.cfg.PollInterval
		}
		due, next, err := s.db.NextOutbox(ctx, now, batch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("read outbox", "err", err)
			}
			return s.cfg.PollInterval
		}
		if len(due) == 0 {
			if !next.IsZero() {
				return min(max(next.Sub(now), 0), s.cfg.PollInterval)
			}
			return s.cfg.PollInterval
		}
		if wait, stop := s.handleBatch(ctx, due); stop {
			return wait
		}
		now = s.clock.Now()
	}
}

func (s *Sender) pausedUntil() time.Time {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	return s.pauseUntil
}

// handleBatch delivers the due class heads, up to Config.Concurrency at
// once. A job that stops the pass (a transient failure, shutdown) keeps
// further jobs from starting; those in flight finish. It returns the
// longest wait a stopping job asked for.
func (s *Sender) handleBatch(ctx context.Context, due []store.OutboxJob) (wait time.Duration, stop bool) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	slots := make(chan struct{}, max(s.cfg.Concurrency, 1))
	for _, j := range due {
		slots <- struct{}{}
		mu.Lock()
		halt := stop
		mu.Unlock()
		if halt {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if w, st := s.handle(ctx, j); st {
				mu.Lock()
				stop, wait = true, max(wait, w)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return wait, stop
}

// handle delivers one job and records the outcome. stop ends the pass,
// waiting wait.
func (s *Sender) handle(ctx context.Context, j store.OutboxJob) (wait time.Duration, stop bool) {
	log := s.log.With("job", j.ID.String(), "kind", j.Kind.String(), "bcid", j.BCID.String())
	start := s.clock.Now()
	err := s.deliver(ctx, j)
	switch {
	case err == nil:
		if err := s.db.MarkOutboxDelivered(ctx, j.Seq, j.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			// Delivered but not marked: the checkpoint makes the
			// re-delivery a no-op for enrollments.
			log.Error("mark delivered", "err", err)
			return s.cfg.PollInterval, true
		}
		s.loopMu.Lock()
		if s.failures > 0 {
			log.Info("sync recovered", "failures", s.failures)
		}
		s.failures, s.lastLogged = 0, ""
		s.loopMu.Unlock()
		s.m.delivered.WithLabelValues(j.Kind.String()).Inc()
		s.m.latency.Observe(s.clock.Now().Sub(start).Seconds())
		now := s.clock.Now()
		s.mu.Lock()
		s.status.Delivered++
		s.status.LastDelivery = &now
		s.mu.Unlock()
		log.Debug("delivered", "attempts", j.Attempts+1)
		return 0, false
	case ctx.Err() != nil:
		return 0, true // shutting down: not the job's fault
	case errors.Is(err, store.ErrNotFound):
		// Dropped or superseded by a deletion meanwhile.
		return 0, false
	case IsPermanent(err):
		s.m.failures.WithLabelValues("permanent").Inc()
		s.noteError(err)
		if err := s.db.MoveOutboxToDead(ctx, j.Seq, j.ID, err.Error()); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error("move to dead letters", "err", err)
			return s.cfg.PollInterval, true
		}
		log.Warn("sync job failed permanently; kept as a dead letter", "err", err)
		return 0, false
	default:
		s.m.failures.WithLabelValues("transient").Inc()
		s.noteError(err)
		s.loopMu.Lock()
		delay := s.cfg.Backoff.Delay(s.failures, s.rand())
		s.failures++
		failures := s.failures
		retryAt := s.clock.Now().Add(delay)
		if retryAt.After(s.pauseUntil) {
			s.pauseUntil = retryAt
		}
		// Log a failure once until it changes or recovers: a centre down
		// for a day must not fill the journal.
		logIt := err.Error() != s.lastLogged
		s.lastLogged = err.Error()
		s.loopMu.Unlock()
		if err := s.db.RecordOutboxFailure(ctx, j.Seq, j.ID, err.Error(), retryAt); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Error("record failure", "err", err)
		}
		if logIt {
			log.Warn("sync delivery failed; retrying", "err", err, "retry_in", delay, "failures", failures)
		}
		return delay, true
	}
}

func (s *Sender) noteError(err error) {
	now := s.clock.Now()
	s.mu.Lock()
	s.status.LastError = err.Error()
	s.status.LastErrorTime = &now
	s.mu.Unlock()
}

// checkpoint is what the sender records before the first enroll call.
type checkpoint struct {
	V   int         `json:"v"`
	Pre ClassStatus `json:"pre"` // the class centrally before the job
}

// applied reports whether an enrollment made after pre shows in now.
func applied(pre, now ClassStatus) bool {
	if !pre.Enrolled {
		return now.Enrolled
	}
	if pre.Templates >= 0 && now.Templates >= 0 {
		return now.Templates > pre.Templates
	}
	return false // undecidable: enroll again (see Sender)
}

func (s *Sender) deliver(ctx context.Context, j store.OutboxJob) error {
	central, err := s.mapper.Map(j.BCID)
	if err != nil {
		return &DeliveryError{Op: "map", Permanent: true, Err: err}
	}
	switch j.Kind {
	case store.OutboxDelete:
		return s.client.Delete(ctx, central, j.ID)
	case store.OutboxEnroll:
	default:
		return &DeliveryError{Op: "job", Code: "unknown kind " + j.Kind.String(), Permanent: true}
	}
	if j.Erased {
		return &DeliveryError{Op: "job", Code: "samples erased", Permanent: true}
	}
	samples, err := s.db.OutboxSamples(ctx, j)
	if err != nil {
		return err
	}
	st, err := s.client.Status(ctx, central)
	if err != nil {
		return err
	}
	if len(j.Checkpoint) > 0 {
		var cp checkpoint
		if err := json.Unmarshal(j.Checkpoint, &cp); err == nil && cp.V == 1 {
			if applied(cp.Pre, st) {
				s.log.Info("enrollment found applied centrally; not enrolling again", "job", j.ID.String(), "bcid", j.BCID.String())
				return nil
			}
		}
	} else {
		cp, err := json.Marshal(checkpoint{V: 1, Pre: st})
		if err != nil {
			return err
		}
		if err := s.db.SetOutboxCheckpoint(ctx, j.Seq, j.ID, cp); err != nil {
			return err
		}
	}
	return s.client.Enroll(ctx, central, j.ID, samples)
}

// refreshStats reads the store's counters into the status.
func (s *Sender) refreshStats(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	st, err := s.db.OutboxStats(ctx)
	if err != nil {
		s.log.Debug("outbox stats", "err", err)
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Pending, s.status.DeadLetters, s.status.SampleBytes, s.status.Full = st.Pending, st.Dead, st.SampleBytes, st.Full
	s.status.OldestAgeSeconds = 0
	if !st.Oldest.IsZero() {
		s.status.OldestAgeSeconds = max(now.Sub(st.Oldest).Seconds(), 0)
	}
	s.status.RetryAt = nil
	if pause := s.pausedUntil(); now.Before(pause) {
		s.status.RetryAt = &pause
	}
}
