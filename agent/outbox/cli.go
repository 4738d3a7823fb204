package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/bwsagent/bwsagent/store"
	"github.com/google/uuid"
)

// Functions for `bwsagent outbox list|retry|drop`. They work on an open
// store: the agent's own (over the admin socket) or the file of a stopped
// agent. They never print samples.

// ListOptions selects what List prints.
type ListOptions struct {
	Dead bool      // the dead letters instead of the pending jobs
	JSON bool      // one JSON object per line instead of a table
	Now  time.Time // for ages; zero means time.Now()
}

// listed is a job as List shows it.
type listed struct {
	Seq         uint64     `json:"seq"`
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	BCID        string     `json:"bcid"`
	Samples     int        `json:"samples"`
	Bytes       int64      `json:"bytes"`
	Erased      bool       `json:"erased,omitempty"`
	Created     time.Time  `json:"created"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	DeadAt      *time.Time `json:"dead_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// List writes the pending jobs (or the dead letters) in order, then a
// summary line (table form).
func List(ctx context.Context, db *store.DB, w io.Writer, o ListOptions) error {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	var tw *tabwriter.Writer
	enc := json.NewEncoder(w)
	if !o.JSON {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tID\tKIND\tBCID\tSAMPLES\tAGE\tATTEMPTS\tLAST ERROR")
	}
	var after uint64
	n := 0
	for {
		jobs, err := db.OutboxJobs(ctx, o.Dead, after, 256)
		if err != nil {
			return fmt.Errorf("list outbox: %w", err)
		}
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			after = j.Seq
			n++
			if o.JSON {
				if err := enc.Encode(listed{
					Seq: j.Seq, ID: j.ID.String(), Kind: j.Kind.String(), BCID: j.BCID.String(),
					Samples: j.SampleCount, Bytes: j.SampleBytes, Erased: j.Erased, Created: j.Created,
					Attempts: j.Attempts, NextAttempt: optTime(j.NextAttempt), DeadAt: optTime(j.DeadAt), LastError: j.LastError,
				}); err != nil {
					return err
				}
				continue
			}
			samples := fmt.Sprint(j.SampleCount)
			if j.Erased {
				samples = "erased"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", j.Seq, j.ID, j.Kind, j.BCID, samples,
				o.Now.Sub(j.Created).Round(time.Second), j.Attempts, j.LastError)
		}
	}
	if o.JSON {
		return nil
	}
	what := "pending"
	if o.Dead {
		what = "dead letters"
	}
	fmt.Fprintf(tw, "%d %s\n", n, what)
	return tw.Flush()
}

// parseIDs turns arguments into job ids.
func parseIDs(args []string) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, 0, len(args))
	for _, a := range args {
		id, err := uuid.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("job id %q: %w", a, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// deadIDs lists every dead letter's id.
func deadIDs(ctx context.Context, db *store.DB) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	var after uint64
	for {
		jobs, err := db.OutboxJobs(ctx, true, after, 256)
		if err != nil {
			return nil, err
		}
		if len(jobs) == 0 {
			return ids, nil
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
			after = j.Seq
		}
	}
}

// Retry moves dead letters back to the end of the outbox: the given job
// ids, or every dead letter when all is set. It reports each job on w and
// returns how many moved; the error joins the failures. Notify the sender
// afterwards.
func Retry(ctx context.Context, db *store.DB, w io.Writer, args []string, all bool) (int, error) {
	ids, err := parseIDs(args)
	if err != nil {
		return 0, err
	}
	if all {
		if ids, err = deadIDs(ctx, db); err != nil {
			return 0, fmt.Errorf("list dead letters: %w", err)
		}
	}
	var errs []error
	n := 0
	for _, id := range ids {
		j, err := db.RetryOutbox(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("retry %s: %w", id, err))
			continue
		}
		n++
		fmt.Fprintf(w, "requeued %s (%s %s) as %d\n", j.ID, j.Kind, j.BCID, j.Seq)
	}
	return n, errors.Join(errs...)
}

// Drop deletes jobs, pending or dead, with their samples: the given ids,
// or every dead letter when allDead is set. The centre never learns of
// them.
func Drop(ctx context.Context, db *store.DB, w io.Writer, args []string, allDead bool) (int, error) {
	ids, err := parseIDs(args)
	if err != nil {
		return 0, err
	}
	if allDead {
		if ids, err = deadIDs(ctx, db); err != nil {
			return 0, fmt.Errorf("list dead letters: %w", err)
		}
	}
	var errs []error
	n := 0
	for _, id := range ids {
		j, err := db.DropOutbox(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", id, err))
			continue
		}
		n++
		fmt.Fprintf(w, "dropped %s (%s %s)\n", j.ID, j.Kind, j.BCID)
	}
	return n, errors.Join(errs...)
}
