package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/bws"
)

func (m *Main) classesList(ctx context.Context, args []string) error {
	fs := m.newFlagSet("classes list", "[options]",
		`Lists the enrolled classes (one class is one person) with their number of
templates. STALE counts templates of an older face model: such classes need
re-enrolling (an enroll call with new samples) before they verify again.
`+adminHelp)
	cf := addConfigFlags(fs)
	storage := fs.String("storage", "", "only this storage")
	partition := fs.Int("partition", -1, "only this partition (needs --storage)")
	asJSON := fs.Bool("json", false, "JSON output")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *partition >= 0 && *storage == "" {
		return usagef("--partition needs --storage")
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	cs, err := svc.Classes(ctx, *storage, *partition)
	if err != nil {
		return fmt.Errorf("classes list: %w", err)
	}
	if *asJSON {
		if cs == nil {
			cs = []admin.Class{}
		}
		return m.printJSON(cs)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BCID\tTEMPLATES\tSTALE\tUPDATED")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c.BCID, c.Templates, c.Stale, c.Updated.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// oneBCID parses a command that takes exactly one BCID.
func (m *Main) oneBCID(name, help string, args []string, extra func(fs *configFlags)) (*configFlags, bws.BCID, error) {
	fs := m.newFlagSet(name, "[options] BCID", help+"\nBCID is storage.partition.classid or storage/partition/classid.\n"+adminHelp)
	cf := addConfigFlags(fs)
	if extra != nil {
		extra(cf)
	}
	if err := parse(fs, args); err != nil {
		return nil, bws.BCID{}, err
	}
	if fs.NArg() != 1 {
		return nil, bws.BCID{}, usagef("%s needs one BCID, e.g. bws.12.4711", name)
	}
	b, err := bws.ParseBCID(fs.Arg(0))
	if err != nil {
		return nil, bws.BCID{}, usageError{err.Error()}
	}
	return cf, b, nil
}

func (m *Main) classesShow(ctx context.Context, args []string) error {
	var asJSON *bool
	cf, b, err := m.oneBCID("classes show", "Shows a class's templates: model, quality, age (never the vectors).", args,
		func(cf *configFlags) { asJSON = cf.fs.Bool("json", false, "JSON output") })
	if err != nil {
		return err
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	d, err := svc.Class(ctx, b)
	if err != nil {
		return fmt.Errorf("classes show: %w", err)
	}
	if *asJSON {
		return m.printJSON(d)
	}
	fmt.Fprintf(m.Stdout, "class %s: %d templates, %d stale\n", d.BCID, d.Templates, d.Stale)
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEMPLATE\tMODEL\tVERSION\tDIM\tQUALITY\tCREATED\tSTALE")
	for _, t := range d.List {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.3f\t%s\t%v\n", t.ID, t.Model, t.ModelVersion, t.Dim, t.Quality, t.Created.Local().Format(time.DateTime), t.Stale)
	}
	return tw.Flush()
}

func (m *Main) classesDelete(ctx context.Context, args []string) error {
	cf, b, err := m.oneBCID("classes delete", "Deletes a class and all its templates (as /deleteclass does).", args, nil)
	if err != nil {
		return err
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.DeleteClass(ctx, b); err != nil {
		return fmt.Errorf("classes delete: %w", err)
	}
	fmt.Fprintf(m.Stdout, "class %s deleted\n", b)
	return nil
}
