package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/token"
	"github.com/bwsagent/bwsagent/enroll"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/face/imgio"
	"github.com/bwsagent/bwsagent/liveness"
	"github.com/bwsagent/bwsagent/store"
)

// TemplateVersion is the ModelVersion of the templates the agent stores:
// how a template is made from a call's samples (1: enroll.Fuse, a
// quality-weighted mean of the samples' embeddings). Templates of another
// model or version are marked stale by New and need a re-enrollment.
const TemplateVersion = "fused-1"

// Error codes of biometric calls, as the contract spells them.
const (
	CodeLiveDetectionFailed     = liveness.CodeLiveDetectionFailed
	CodeChallengeResponseFailed = liveness.CodeChallengeResponseFailed
	CodeNotEnoughSamples        = liveness.CodeNotEnoughSamples
	CodeNoTemplateAvailable     = "NoTemplateAvailable"
	CodeExecutionOfJobTimedOut  = "ExecutionOfJobTimedOut"

	CodeNoFaceFound             = "NoFaceFound"
	CodeMultipleFacesFound      = "MultipleFacesFound"
	CodeSampleNotOfExpectedType = "SampleNotOfExpectedType"
)

// recordTimeout bounds the bookkeeping after a decision (token result,
// audit entry), which runs even when the client has gone away.
const recordTimeout = 5 * time.Second

// maxIndex bounds an upload's index parameter.
const maxIndex = 1 << 20

// TokenOptions are the /token parameters besides app, BCID and task.
// Start from DefaultTokenOptions: the zero value has liveness off.
type TokenOptions struct {
	MaxTries      int  // 1..15; 0 means 3
	LiveDetection bool // the contract's default is true
	Challenge     bool // challenge-response; needs LiveDetection
	Challenges    int  // directions per try, 2..7; 0 means 3
	AutoEnroll    bool // verify only: a successful verify also enrolls
	Traits        bws.Traits
	// Sequence fixes the challenge (one array per try) instead of a random
	// one; for capture sessions that drive their own prompts, and tests.
	Sequence bws.Challenge
}

// DefaultTokenOptions returns the contract's defaults: 3 tries, liveness
// detection on, no challenge, trait Face.
func DefaultTokenOptions() TokenOptions {
	return TokenOptions{MaxTries: bws.DefaultTries, LiveDetection: true, Traits: bws.TraitFace}
}

// UploadResult is the answer of /upload. Warnings is always an array:
// BWS's browser UI calls Warnings.toString().
type UploadResult struct {
	Accepted bool     `json:"Accepted"`
	Error    string   `json:"Error,omitempty"`
	Warnings []string `json:"Warnings"`
}

// MarshalJSON keeps Warnings an array even when nil.
func (u UploadResult) MarshalJSON() ([]byte, error) {
	type plain UploadResult
	if u.Warnings == nil {
		u.Warnings = []string{}
	}
	return json.Marshal(plain(u))
}

// Result is the answer of /enroll, /verify, /identify and
// /livenessdetection. The fields without a JSON name are for the CLI and
// logs, not for clients.
type Result struct {
	Success bool    `json:"Success"`
	Error   string  `json:"Error,omitempty"`
	Matches []Match `json:"Matches,omitempty"`

	Action  string   `json:"-"` // "enrollment", …
	BCID    bws.BCID `json:"-"`
	Score   float64  `json:"-"` // verify: the best similarity
	Reasons []string `json:"-"` // liveness: why, in words
}

// Match is one /identify candidate, best first.
type Match struct {
	Score     float64 `json:"Score"`
	Storage   string  `json:"Storage"`
	Partition int     `json:"Partition"`
	ClassID   int64   `json:"ClassID"`
}

// JobResult is the answer of /result: BWS's own shape, with a BCID per
// match instead of /identify's storage, partition and class.
type JobResult struct {
	Success bool       `json:"Success"`
	Action  string     `json:"Action"`
	BCID    string     `json:"BCID,omitempty"`
	Error   string     `json:"Error,omitempty"`
	Matches []JobMatch `json:"Matches,omitempty"`
}

// JobMatch is one /result match.
type JobMatch struct {
	BCID  string  `json:"BCID"`
	Score float64 `json:"Score"`
}

// PerformOptions are the query parameters of a biometric call.
type PerformOptions struct {
	// LiveDetection switches liveness detection on; it cannot switch off
	// what the token requires.
	LiveDetection bool
	// MaxResults bounds /identify's matches; 0 means 20.
	MaxResults int
}

// ClassInfo summarizes an enrolled class for listings.
type ClassInfo = store.ClassInfo

// IssueToken issues a BWS token for the app with id appID, as /token does
// after Basic authentication: the app must exist and own the BCID's storage
// and partition.
func (s *Server) IssueToken(ctx context.Context, appID string, bcid bws.BCID, op bws.Operation, opts TokenOptions) (string, error) {
	if err := s.open(); err != nil {
		return "", err
	}
	app, err := s.db.App(ctx, appID)
	if err != nil {
		if isStoreNotFound(err) {
			return "", newError(ErrForbidden, "unknown app", err)
		}
		return "", err
	}
	return s.issueToken(app, bcid, op, opts)
}

func (s *Server) issueToken(app store.App, bcid bws.BCID, op bws.Operation, opts TokenOptions) (string, error) {
	bad := func(msg string, err error) (string, error) { return "", newError(ErrBadRequest, msg, err) }
	if bcid.IsZero() {
		if op != bws.OpLivenessDetection {
			return bad("bcid is required for this task", nil)
		}
	} else {
		if err := bcid.Validate(); err != nil {
			return bad("invalid BCID", err)
		}
		if !app.Allows(bcid) {
			return "", newError(ErrPartition, msgPartition, nil)
		}
	}
	if opts.MaxTries == 0 {
		opts.MaxTries = bws.DefaultTries
	}
	if opts.MaxTries < bws.MinTries || opts.MaxTries > bws.MaxTries {
		return bad("maxtries must be 1..15", nil)
	}
	var flags bws.Task
	if opts.LiveDetection {
		flags |= bws.TaskLiveDetection
	}
	if opts.Challenge {
		if !opts.LiveDetection && op != bws.OpLivenessDetection {
			return bad("challenge needs livedetection", nil)
		}
		flags |= bws.TaskChallengeResponse
	}
	if opts.AutoEnroll {
		if op != bws.OpVerify {
			return bad("autoenroll is for task verify only", nil)
		}
		flags |= bws.TaskAutoEnroll
	}
	if opts.Challenges != 0 && (opts.Challenges < bws.MinChallengeLen || opts.Challenges > bws.MaxChallengeLen) {
		return bad("challenges must be 2..7", nil)
	}
	task, err := bws.NewTask(op, opts.MaxTries, flags)
	if err != nil {
		return bad("invalid task", err)
	}
	req := token.Request{
		App:          app.ID,
		Client:       app.Name,
		BCID:         bcid,
		Task:         task,
		Traits:       opts.Traits,
		ChallengeLen: opts.Challenges,
	}
	if opts.Challenge {
		req.Challenge = opts.Sequence
	}
	raw, _, err := s.tokens.Issue(req)
	if err != nil {
		if errors.Is(err, token.ErrBadRequest) {
			return bad("invalid token request", err)
		}
		return "", fmt.Errorf("issue token: %w", err)
	}
	return raw, nil
}

// authorize validates a BWS token and checks that its app still exists
// and still owns the token's partition (an app removed or narrowed since
// the token was issued loses it at once).
func (s *Server) authorize(ctx context.Context, raw string) (*token.Claims, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	c, err := s.tokens.Validate(raw)
	if err != nil {
		return nil, newError(ErrUnauthorized, msgBadToken, err)
	}
	app, err := s.db.App(ctx, c.App)
	switch {
	case isStoreNotFound(err):
		return nil, newError(ErrUnauthorized, msgBadToken, err)
	case err != nil:
		return nil, err
	case !c.BCID.IsZero() && !app.Allows(c.BCID):
		return nil, newError(ErrPartition, msgPartition, nil)
	}
	return c, nil
}

// Upload analyses one sample (a data URL, as /upload's raw body) for the
// token and holds it until a biometric call consumes it. tag is "any" (or
// empty) or a challenge direction; index orders the samples of a try.
func (s *Server) Upload(ctx context.Context, rawToken string, body []byte, tag string, index int) (UploadResult, error) {
	c, err := s.authorize(ctx, rawToken)
	if err != nil {
		return UploadResult{}, err
	}
	return s.upload(ctx, c, body, tag, index, 0)
}

func (s *Server) upload(ctx context.Context, c *token.Claims, body []byte, tag string, index int, trait bws.Traits) (UploadResult, error) {
	tag, err := normalizeTag(tag)
	if err != nil {
		return UploadResult{}, err
	}
	if index < 0 || index > maxIndex {
		return UploadResult{}, newError(ErrBadRequest, "invalid index", nil)
	}
	sample, err := bws.ParseDataURL(body, int(s.cfg.MaxUploadBytes))
	if err != nil {
		return UploadResult{}, err
	}
	if trait != 0 && !c.Traits.Has(trait) {
		return UploadResult{Error: CodeSampleNotOfExpectedType}, nil
	}
	// Sync mode keeps the file for the centre; otherwise only the
	// analysis is held.
	var file []byte
	if s.sync != nil {
		file = sample.Data
	}
	if err := s.held.reserve(c.TokenID, c.Expires, len(file)); err != nil {
		return UploadResult{}, err
	}
	committed := false
	defer func() {
		if !committed {
			s.held.cancel(c.TokenID, len(file))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.JobTimeout)
	defer cancel()
	ls, err := s.analyze(ctx, sample.Data, tag)
	if err != nil {
		return UploadResult{}, err
	}
	res := UploadResult{Warnings: warnings(ls)}
	switch ls.Problem {
	case "", liveness.ProblemFaceTooSmall:
		// A small face still has a template; liveness will not use it,
		// and the ImageTooSmall warning tells the client.
		res.Accepted = true
	case liveness.ProblemMultipleFaces:
		res.Error = CodeMultipleFacesFound
	default:
		res.Error = CodeNoFaceFound
	}
	s.metrics.upload(res)
	if !res.Accepted {
		return res, nil
	}
	if !s.held.commit(c.TokenID, index, ls, file) {
		if err := s.open(); err != nil {
			return UploadResult{}, err
		}
		return UploadResult{}, newError(ErrUnauthorized, msgBadToken, errors.New("token expired during the upload"))
	}
	committed = true
	return res, nil
}

// analyze decodes an image with the size limits checked on its header and
// measures it; the pixels are gone when it returns.
func (s *Server) analyze(ctx context.Context, data []byte, tag string) (liveness.Sample, error) {
	img, _, err := imgio.Decode(data, imgio.Limits{MaxBytes: s.cfg.MaxUploadBytes, MaxPixels: s.cfg.MaxPixels})
	if err != nil {
		return liveness.Sample{}, err
	}
	if b := img.Bounds(); b.Dx() < minImageSide || b.Dy() < minImageSide {
		return liveness.Sample{Tag: tag, Problem: liveness.ProblemNoFace}, nil
	}
	m, err := face.MatFromImage(img)
	if err != nil {
		return liveness.Sample{}, fmt.Errorf("image to Mat: %w", err)
	}
	defer m.Close()
	start := time.Now()
	ls, err := s.live.Analyze(ctx, m, tag)
	s.metrics.analysis(time.Since(start))
	if err != nil {
		return liveness.Sample{}, timedOut(ctx, fmt.Errorf("analyze sample: %w", err))
	}
	return ls, nil
}

// minImageSide: the engine refuses smaller images; they hold no face.
const minImageSide = 16

// timedOut turns the job deadline into the contract's timeout answer.
func timedOut(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return newError(ErrUnavailable, msgTimeout, err)
	}
	return err
}

// warnings returns the primary face's quality codes. MultipleFacesFound is
// left out: when another face matters the sample is refused with that
// error, and a small face far behind the user is no reason to worry them.
func warnings(ls liveness.Sample) []string {
	w := []string{}
	if ls.Problem == liveness.ProblemNoFace {
		return w
	}
	for _, c := range ls.Face.Warnings {
		if c != face.WarnMultipleFaces {
			w = append(w, c)
		}
	}
	return w
}

func normalizeTag(tag string) (string, error) {
	if tag == "" {
		return liveness.TagAny, nil
	}
	t := strings.ToLower(tag)
	if !liveness.ValidTag(t) {
		return "", newError(ErrBadRequest, "invalid tag", nil)
	}
	return t, nil
}

// Perform runs a biometric call with the token's samples: op is the
// endpoint (/enroll, /verify, /identify, /livenessdetection).
func (s *Server) Perform(ctx context.Context, rawToken string, op bws.Operation, livedetection bool) (Result, error) {
	return s.PerformWith(ctx, rawToken, op, PerformOptions{LiveDetection: livedetection})
}

// PerformWith is Perform with all of a call's parameters.
func (s *Server) PerformWith(ctx context.Context, rawToken string, op bws.Operation, opts PerformOptions) (Result, error) {
	c, err := s.authorize(ctx, rawToken)
	if err != nil {
		return Result{}, err
	}
	if err := c.Allow(op); err != nil {
		return Result{}, newError(ErrTaskNotAllowed, msgTask, err)
	}
	if opts.MaxResults == 0 {
		opts.MaxResults = DefaultMaxResults
	}
	if opts.MaxResults < 1 || opts.MaxResults > MaxMaxResults {
		return Result{}, newError(ErrBadRequest, "invalid maxResults", nil)
	}
	return s.perform(ctx, c, op, opts)
}

func (s *Server) perform(ctx context.Context, c *token.Claims, op bws.Operation, opts PerformOptions) (Result, error) {
	classKey := c.BCID.String()
	if op == bws.OpVerify {
		if d, locked := s.verifyLock.locked(classKey, s.now()); locked {
			return Result{}, &Error{Kind: ErrLockedOut, Message: msgVerifyLocked, RetryAfter: d}
		}
	}
	// Refuse a used-up token before touching its samples; UseTry below
	// settles races between parallel calls.
	st, err := s.db.Token(ctx, c.TokenID)
	switch {
	case err == nil && st.TriesUsed >= c.Task.MaxTries():
		s.held.drop(c.TokenID)
		return Result{}, newError(ErrTriesExhausted, msgTries, nil)
	case err != nil && !isStoreNotFound(err):
		return Result{}, fmt.Errorf("token state: %w", err)
	}
	samples, files := s.held.take(c.TokenID)
	if len(samples) == 0 {
		return Result{}, newError(ErrNoSamples, msgNoSamples, nil)
	}
	st, err = s.db.UseTry(ctx, c.TokenID, c.Task.MaxTries(), c.Expires)
	if errors.Is(err, store.ErrTriesExhausted) {
		return Result{}, newError(ErrTriesExhausted, msgTries, err)
	}
	if err != nil {
		return Result{}, fmt.Errorf("count try: %w", err)
	}
	try := st.TriesUsed - 1

	start := time.Now()
	jobCtx, cancel := context.WithTimeout(ctx, s.cfg.JobTimeout)
	res, err := s.decide(jobCtx, c, op, samples, files, try, opts)
	expired := errors.Is(jobCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	switch {
	case err != nil && expired:
		res = Result{Error: CodeExecutionOfJobTimedOut}
	case err != nil:
		return Result{}, err
	}
	res.Action, res.BCID = op.Action(), c.BCID
	if op == bws.OpVerify {
		switch {
		case res.Success:
			s.verifyLock.reset(classKey)
		case res.Error == "" || res.Error == CodeLiveDetectionFailed || res.Error == CodeChallengeResponseFailed:
			// A failed attempt at this class, whoever made it.
			s.verifyLock.fail(classKey, s.now())
		}
	}
	s.metrics.decision(op, res, time.Since(start))
	if err := s.record(ctx, c, op, res, len(samples)); err != nil {
		return Result{}, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "biometric call",
		slog.String("action", res.Action), slog.String("app", c.App), slog.String("tokenid", c.TokenID),
		slog.String("bcid", bcidString(c.BCID)), slog.Int("samples", len(samples)), slog.Int("try", try+1),
		slog.Bool("success", res.Success), slog.String("error", res.Error), slog.Any("reasons", res.Reasons))
	return res, nil
}

// decide is the biometric part of a call: liveness when required, then
// the operation on the samples' fused template. files are the samples'
// image files in sync mode, for an enrollment's outbox job.
func (s *Server) decide(ctx context.Context, c *token.Claims, op bws.Operation, samples []liveness.Sample, files [][]byte, try int, opts PerformOptions) (Result, error) {
	if c.Task.LiveDetection() || opts.LiveDetection || op == bws.OpLivenessDetection {
		challenge := c.Task.ChallengeResponse()
		d := s.live.Decide(samples, challenge)
		if d.Live && challenge && !tagsFollow(samples, c.Challenge, try) {
			d.Live, d.Code = false, CodeChallengeResponseFailed
			d.Reasons = append(d.Reasons, "sample tags do not follow the token's challenge")
		}
		if !d.Live {
			if d.Code == "" {
				d.Code = CodeLiveDetectionFailed
			}
			return Result{Error: d.Code, Reasons: d.Reasons}, nil
		}
	}
	if op == bws.OpLivenessDetection {
		return Result{Success: true}, nil
	}
	probe, ok := fuse(samples)
	if !ok {
		return Result{Error: CodeNotEnoughSamples}, nil
	}
	switch op {
	case bws.OpEnroll:
		if err := s.addTemplate(ctx, c.BCID, probe, files); err != nil {
			return Result{}, err
		}
		return Result{Success: true}, nil
	case bws.OpVerify:
		return s.verify(ctx, c, probe, files)
	case bws.OpIdentify:
		return s.identify(c.BCID, probe, opts.MaxResults)
	}
	return Result{}, fmt.Errorf("unknown operation %v", op)
}

// tagsFollow reports whether the direction tags of a try's samples, in
// order, are exactly the token's challenge for that try ("any" samples
// may come between, the first one must).
func tagsFollow(samples []liveness.Sample, ch bws.Challenge, try int) bool {
	if try < 0 || try >= len(ch) {
		return false
	}
	want := ch[try]
	k := 0
	for _, s := range samples {
		if s.Tag == liveness.TagAny || s.Tag == "" {
			continue
		}
		if k >= len(want) || s.Tag != want[k].String() {
			return false
		}
		k++
	}
	return k == len(want)
}

// fuse makes one template of the samples with a face: the enrollment
// template, or the probe of a verify or identify.
func fuse(samples []liveness.Sample) (enroll.Template, bool) {
	es := make([]enroll.Sample, 0, len(samples))
	for i := range samples {
		ls := &samples[i]
		if len(ls.Embedding) == 0 || ls.Faces != 1 {
			continue
		}
		es = append(es, enroll.Sample{Embedding: ls.Embedding, Quality: enroll.SampleQuality(ls.Face)})
	}
	t, err := enroll.Fuse(es)
	if err != nil {
		return enroll.Template{}, false
	}
	return t, true
}

// addTemplate stores an enrollment's template; in sync mode together with
// the outbox job that gives the centre the same samples (files), in one
// transaction.
func (s *Server) addTemplate(ctx context.Context, c bws.BCID, t enroll.Template, files [][]byte) error {
	tpl := store.Template{
		Model:        t.Model,
		ModelVersion: TemplateVersion,
		Vector:       t.Vector,
		Quality:      t.Quality,
	}
	var err error
	if s.sync == nil {
		_, err = s.db.AddTemplates(ctx, c, tpl)
	} else {
		// A job holds at most MaxOutboxSamples; the first ones, in upload
		// order, are what a BWS client sends first too.
		files = files[:min(len(files), store.MaxOutboxSamples)]
		_, _, err = s.db.AddTemplatesWithOutbox(ctx, c, store.OutboxJob{Samples: files}, tpl)
		if errors.Is(err, store.ErrOutboxFull) {
			return newError(ErrUnavailable, msgSyncFull, err)
		}
	}
	if err != nil {
		return fmt.Errorf("add template: %w", err)
	}
	if s.sync != nil {
		s.sync.Notify()
	}
	if err := s.galleries.refresh(ctx, c); err != nil {
		return fmt.Errorf("update gallery: %w", err)
	}
	return nil
}

func (s *Server) verify(ctx context.Context, c *token.Claims, probe enroll.Template, files [][]byte) (Result, error) {
	ts, err := s.db.Templates(ctx, c.BCID)
	if err != nil && !isStoreNotFound(err) {
		return Result{}, fmt.Errorf("templates: %w", err)
	}
	var use []enroll.Template
	for _, t := range ts {
		if usable(t) {
			use = append(use, enroll.Template{Model: t.Model, Vector: t.Vector, Quality: t.Quality})
		}
	}
	if len(use) == 0 {
		return Result{Error: CodeNoTemplateAvailable}, nil
	}
	score, err := enroll.Verify(probe.Vector, use)
	if errors.Is(err, enroll.ErrNoTemplates) {
		return Result{Error: CodeNoTemplateAvailable}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("verify: %w", err)
	}
	res := Result{Success: score >= s.tunables().verifyThreshold, Score: score}
	if res.Success && c.Task.AutoEnroll() {
		if err := s.addTemplate(ctx, c.BCID, probe, files); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func (s *Server) identify(c bws.BCID, probe enroll.Template, maxResults int) (Result, error) {
	g := s.galleries.get(c.Storage, c.Partition)
	if g == nil {
		return Result{}, nil
	}
	ms, err := g.Identify(probe.Vector, maxResults, s.tunables().identifyThreshold)
	if err != nil {
		return Result{}, fmt.Errorf("identify: %w", err)
	}
	if len(ms) == 0 {
		return Result{}, nil
	}
	res := Result{Success: true, Matches: make([]Match, len(ms))}
	for i, m := range ms {
		res.Matches[i] = Match{Score: score(m.Score), Storage: c.Storage, Partition: c.Partition, ClassID: m.ClassID}
	}
	return res, nil
}

// score rounds a similarity for answers, short and stable as BWS's (0.994),
// and clamps it to 1: the gallery's int8 vectors can overshoot a cosine by
// a few thousandths.
func score(x float64) float64 { return math.Min(1, math.Round(x*1e4)/1e4) }

// record stores the call's /result answer and its audit entry. It runs on
// after the client has gone: the decision was made and must be on file.
func (s *Server) record(ctx context.Context, c *token.Claims, op bws.Operation, res Result, n int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	b, err := json.Marshal(jobResult(c.BCID, res))
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := s.db.SetTokenResult(ctx, c.TokenID, b, c.Expires); err != nil {
		return fmt.Errorf("store result: %w", err)
	}
	detail := fmt.Sprintf("samples=%d", n)
	if len(res.Matches) > 0 {
		detail += fmt.Sprintf(" matches=%d", len(res.Matches))
	}
	if len(res.Reasons) > 0 {
		detail += " reason=" + res.Reasons[0]
	}
	return s.audit(ctx, store.AuditEntry{
		App: c.App, TokenID: c.TokenID, Action: op.Action(), BCID: bcidString(c.BCID),
		Result: outcome(res.Success, res.Error), Detail: detail,
	})
}

func (s *Server) audit(ctx context.Context, e store.AuditEntry) error {
	if _, err := s.db.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func outcome(success bool, code string) string {
	switch {
	case success:
		return "success"
	case code != "":
		return code
	}
	return "failure"
}

func jobResult(c bws.BCID, res Result) JobResult {
	jr := JobResult{Success: res.Success, Action: res.Action, BCID: bcidString(c), Error: res.Error}
	for _, m := range res.Matches {
		b := bws.BCID{Storage: m.Storage, Partition: m.Partition, ClassID: m.ClassID}
		jr.Matches = append(jr.Matches, JobMatch{BCID: b.String(), Score: m.Score})
	}
	return jr
}

func bcidString(c bws.BCID) string {
	if c.IsZero() {
		return ""
	}
	return c.String()
}

// DeleteClass removes a class and all its templates (an admin call; the
// /deleteclass route checks the app's partition first). A class that does
// not exist is an error matching ErrNotFound.
func (s *Server) DeleteClass(ctx context.Context, c bws.BCID) error {
	return s.deleteClass(ctx, "admin", c)
}

func (s *Server) deleteClass(ctx context.Context, who string, c bws.BCID) error {
	if err := s.open(); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return newError(ErrBadRequest, "invalid BCID", err)
	}
	var err error
	if s.sync == nil {
		err = s.db.DeleteClass(ctx, c)
	} else {
		// The delete job drops the class's pending enroll jobs and their
		// samples in the same transaction.
		_, _, err = s.db.DeleteClassWithOutbox(ctx, c, store.OutboxJob{})
	}
	found := !isStoreNotFound(err)
	if err != nil && found {
		return fmt.Errorf("delete class: %w", err)
	}
	if found && s.sync != nil {
		s.sync.Notify()
	}
	s.galleries.remove(c)
	s.verifyLock.reset(c.String())
	if err := s.audit(ctx, store.AuditEntry{App: who, Action: "deleteclass", BCID: c.String(), Result: outcome(found, "NotFound")}); err != nil {
		return err
	}
	if !found {
		return newError(ErrNotFound, "class not found", err)
	}
	return nil
}

// Classes lists the classes of a storage partition (partition < 0: every
// partition; storage "": everything).
func (s *Server) Classes(ctx context.Context, storage string, partition int) ([]ClassInfo, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	var out []ClassInfo
	err := s.db.ForEachClass(ctx, storage, partition, func(ci store.ClassInfo) error {
		out = append(out, ci)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list classes: %w", err)
	}
	return out, nil
}

// IsEnrolled reports whether the class has a template usable with the
// current model (a class with only stale templates needs re-enrolling).
func (s *Server) IsEnrolled(ctx context.Context, c bws.BCID) (bool, error) {
	if err := s.open(); err != nil {
		return false, err
	}
	ts, err := s.db.Templates(ctx, c)
	if isStoreNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("templates: %w", err)
	}
	for _, t := range ts {
		if usable(t) {
			return true, nil
		}
	}
	return false, nil
}

// jobResultOf returns the stored /result answer of a token issued to app,
// or nil before any biometric call.
func (s *Server) jobResultOf(ctx context.Context, app store.App, raw string) (json.RawMessage, error) {
	c, err := s.tokens.Validate(raw)
	if err != nil {
		return nil, newError(ErrBadRequest, "invalid access_token", err)
	}
	if c.App != app.ID {
		return nil, newError(ErrForbidden, "the token belongs to another app", nil)
	}
	st, err := s.db.Token(ctx, c.TokenID)
	if isStoreNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token state: %w", err)
	}
	return st.Result, nil
}

// Status is the answer of /status.
type Status struct {
	Version  string    `json:"Version"`
	Label    string    `json:"Label"`
	Features []Feature `json:"Features"`
	// Sync is the sync outbox's state (Deps.Sync), only in sync mode.
	Sync any `json:"Sync,omitempty"`
}

// Feature is one capability of the agent for the calling app.
type Feature struct {
	Name       string `json:"Name"`
	Traits     string `json:"Traits"`
	Storage    string `json:"Storage,omitempty"`
	Partitions string `json:"Partitions,omitempty"`
}

func (s *Server) status(app store.App) Status {
	parts := make([]string, len(app.Partitions))
	for i, p := range app.Partitions {
		parts[i] = fmt.Sprint(p)
	}
	ps := strings.Join(parts, ",")
	traits := bws.TraitFace.String()
	var sync any
	if s.sync != nil {
		sync = s.sync.Status()
	}
	return Status{
		Sync:    sync,
		Version: s.cfg.Version,
		Label:   s.cfg.Label,
		Features: []Feature{
			{Name: "Enrollment", Traits: traits, Storage: app.Storage, Partitions: ps},
			{Name: "Verification", Traits: traits, Storage: app.Storage, Partitions: ps},
			{Name: "Identification", Traits: traits, Storage: app.Storage, Partitions: ps},
			{Name: "LivenessDetection", Traits: traits},
			{Name: "ChallengeResponse", Traits: traits},
		},
	}
}

// liveDetection is /livedetection: are these images (in order) of a live
// person? Images without a usable face make the answer false.
func (s *Server) liveDetection(ctx context.Context, app store.App, images [][]byte) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.JobTimeout)
	defer cancel()
	samples := make([]liveness.Sample, len(images))
	for i, data := range images {
		ls, err := s.analyze(ctx, data, liveness.TagAny)
		if err != nil {
			return false, err
		}
		samples[i] = ls
	}
	d := s.live.Decide(samples, false)
	err := s.audit(context.WithoutCancel(ctx), store.AuditEntry{
		App: app.ID, Action: "livedetection", Result: outcome(d.Live, d.Code), Detail: fmt.Sprintf("samples=%d", len(images)),
	})
	return d.Live, err
}

// QualityResult is the answer of /qualitycheck.
type QualityResult struct {
	Success    bool           `json:"Success"`
	Errors     []QualityError `json:"Errors"`
	EyeCenters *EyeCenters    `json:"EyeCenters,omitempty"`
}

// QualityError is one finding of /qualitycheck.
type QualityError struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
	Details string `json:"Details"`
}

// EyeCenters are the eye centres of the primary face in image pixels. The
// right eye is the person's right eye (on the image's left in a photo).
type EyeCenters struct {
	RightEyeX float64 `json:"RightEyeX"`
	RightEyeY float64 `json:"RightEyeY"`
	LeftEyeX  float64 `json:"LeftEyeX"`
	LeftEyeY  float64 `json:"LeftEyeY"`
}

var qualityMessages = map[string]string{
	CodeNoFaceFound:             "No face was found in the image.",
	CodeMultipleFacesFound:      "More than one face was found in the image.",
	face.WarnImageTooSmall:      "The face is too small.",
	face.WarnImageOverExposure:  "The face is overexposed.",
	face.WarnImageUnderExposure: "The face is underexposed.",
	face.WarnImageTooBlurry:     "The face is not sharp enough.",
	face.WarnFaceNotFrontal:     "The face does not look into the camera.",
	face.WarnFaceAtImageBorder:  "The face is too close to the image border.",
}

func qualityError(code string) QualityError {
	msg, ok := qualityMessages[code]
	if !ok {
		msg = code
	}
	return QualityError{Code: code, Message: msg}
}

// qualityCheck is /qualitycheck: the quality findings of one image.
func (s *Server) qualityCheck(ctx context.Context, data []byte) (QualityResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.JobTimeout)
	defer cancel()
	ls, err := s.analyze(ctx, data, liveness.TagAny)
	if err != nil {
		return QualityResult{}, err
	}
	res := QualityResult{Errors: []QualityError{}}
	switch ls.Problem {
	case liveness.ProblemNoFace, liveness.ProblemNoTemplate:
		res.Errors = append(res.Errors, qualityError(CodeNoFaceFound))
		return res, nil
	case liveness.ProblemMultipleFaces:
		res.Errors = append(res.Errors, qualityError(CodeMultipleFacesFound))
	}
	for _, w := range warnings(ls) {
		res.Errors = append(res.Errors, qualityError(w))
	}
	lm := &ls.Face.Landmarks
	var r, l [2]float64
	for i := 36; i < 42; i++ { // the person's right eye: image left
		r[0] += lm[i].X / 6
		r[1] += lm[i].Y / 6
		l[0] += lm[i+6].X / 6
		l[1] += lm[i+6].Y / 6
	}
	res.EyeCenters = &EyeCenters{RightEyeX: round1(r[0]), RightEyeY: round1(r[1]), LeftEyeX: round1(l[0]), LeftEyeY: round1(l[1])}
	res.Success = len(res.Errors) == 0
	return res, nil
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

func isStoreNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
