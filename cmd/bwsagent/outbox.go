package main

import (
	"context"
	"fmt"

	"github.com/bwsagent/bwsagent/agent/admin"
)

const outboxHelp = `The outbox holds the enrollments and deletions waiting for the central BWS
(sync mode); jobs that failed permanently are kept as dead letters.
`

func (m *Main) outboxList(ctx context.Context, args []string) error {
	fs := m.newFlagSet("outbox list", "[options]", outboxHelp+
		`Lists the pending jobs in delivery order (or the dead letters with --dead):
id, kind, class, samples, age, attempts and the last error. Never samples.
`+adminHelp)
	cf := addConfigFlags(fs)
	dead := fs.Bool("dead", false, "list the dead letters instead")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("outbox list takes no arguments, got %q", fs.Args())
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	rep, err := svc.OutboxList(ctx, admin.OutboxRequest{Dead: *dead, JSON: *asJSON})
	if err != nil {
		return fmt.Errorf("outbox list: %w", err)
	}
	_, err = fmt.Fprint(m.Stdout, rep.Output)
	return err
}

func (m *Main) outboxRetry(ctx context.Context, args []string) error {
	return m.outboxChange(ctx, "retry", `Moves dead letters back to the end of the outbox, to be delivered again (after
fixing what made the centre refuse them). Jobs whose samples expired cannot
be retried: the person must enroll again.
`, args, admin.Service.OutboxRetry)
}

func (m *Main) outboxDrop(ctx context.Context, args []string) error {
	return m.outboxChange(ctx, "drop", `Deletes jobs, pending or dead, with their samples: the centre never learns
of them.
`, args, admin.Service.OutboxDrop)
}

// outboxChange runs retry or drop on the job ids given, or on every dead
// letter with --all.
func (m *Main) outboxChange(ctx context.Context, op, help string, args []string,
	call func(admin.Service, context.Context, admin.OutboxRequest) (admin.OutboxReply, error)) error {
	name := "outbox " + op
	fs := m.newFlagSet(name, "[options] (JOB-ID... | --all)", outboxHelp+help+adminHelp)
	cf := addConfigFlags(fs)
	all := fs.Bool("all", false, "every dead letter")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *all == (fs.NArg() > 0) {
		return usagef("%s needs job ids ('bwsagent outbox list') or --all, not both", name)
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	rep, err := call(svc, ctx, admin.OutboxRequest{IDs: fs.Args(), All: *all})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprint(m.Stdout, rep.Output)
	if rep.Failed != "" {
		return fmt.Errorf("%s: %s", name, rep.Failed)
	}
	return nil
}
