package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/store"
)

const adminHelp = `Talks to the running agent over its admin socket (<data-dir>/admin.sock);
when no agent runs, opens the store in the data directory itself.`

func (m *Main) appsAdd(ctx context.Context, args []string) error {
	fs := m.newFlagSet("apps add", "--id ID [--name NAME] --storage S --partition P [--partition P2...]",
		`Creates an app: a client allowed to call the BWS API with Basic auth
(AppID:AppSecret) on the classes of one storage and the given partitions.
The secret is printed once, as the last line of the output ("secret: ..."),
and only its hash is stored: keep it in the app's configuration.
Before the agent's first start this creates the store and its template key.
`+adminHelp)
	cf := addConfigFlags(fs)
	id := fs.String("id", "", "app id (letters, digits, '_', '.', '-'; required)")
	name := fs.String("name", "", "display name (the tokens' \"clnt\" claim; default the id)")
	storage := fs.String("storage", "", "storage of the app's classes, e.g. bws (required)")
	var parts intsFlag
	fs.Var(&parts, "partition", "partition the app may use (repeatable, or comma-separated; required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("apps add takes no arguments, got %q (options go before them?)", fs.Args())
	}
	if *id == "" || *storage == "" || len(parts) == 0 {
		return usagef("apps add needs --id, --storage and at least one --partition")
	}
	svc, _, err := cf.connect(ctx, true)
	if err != nil {
		return err
	}
	defer svc.Close()
	app, secret, err := svc.AddApp(ctx, admin.NewApp{ID: *id, Name: *name, Storage: *storage, Partitions: parts})
	switch {
	case errors.Is(err, store.ErrExists):
		return fmt.Errorf("apps add: %w (to get a new secret: bwsagent apps rotate-secret %s)", err, *id)
	case err != nil:
		return fmt.Errorf("apps add: %w", err)
	}
	fmt.Fprintf(m.Stdout, "app %s added: storage %s, partitions %s\n", app.ID, app.Storage, joinInts(app.Partitions))
	fmt.Fprintln(m.Stderr, "The secret below is shown only this once; store it in the app's configuration.")
	fmt.Fprintf(m.Stdout, "secret: %s\n", secret)
	return nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (m *Main) appsList(ctx context.Context, args []string) error {
	fs := m.newFlagSet("apps list", "[options]", "Lists the apps (never their secrets).\n"+adminHelp)
	cf := addConfigFlags(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	apps, err := svc.Apps(ctx)
	if err != nil {
		return fmt.Errorf("apps list: %w", err)
	}
	if *asJSON {
		if apps == nil {
			apps = []admin.App{}
		}
		return m.printJSON(apps)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTORAGE\tPARTITIONS\tCREATED")
	for _, a := range apps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, a.Storage, joinInts(a.Partitions), a.Created.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// oneID parses a command that takes exactly one app id.
func (m *Main) oneID(name, help string, args []string) (*configFlags, string, error) {
	fs := m.newFlagSet(name, "[options] ID", help+"\n"+adminHelp)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return nil, "", err
	}
	if fs.NArg() != 1 {
		return nil, "", usagef("%s needs one app id", name)
	}
	return cf, fs.Arg(0), nil
}

func (m *Main) appsRemove(ctx context.Context, args []string) error {
	cf, id, err := m.oneID("apps remove", "Removes an app: its secret stops working at once. Its classes stay (they belong to the storage).", args)
	if err != nil {
		return err
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.RemoveApp(ctx, id); err != nil {
		return fmt.Errorf("apps remove: %w", err)
	}
	fmt.Fprintf(m.Stdout, "app %s removed\n", id)
	return nil
}

func (m *Main) appsRotateSecret(ctx context.Context, args []string) error {
	cf, id, err := m.oneID("apps rotate-secret",
		`Gives an app a new secret, printed once as the last line ("secret: ...").
The old secret stops working at once.`, args)
	if err != nil {
		return err
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	secret, err := svc.RotateAppSecret(ctx, id)
	if err != nil {
		return fmt.Errorf("apps rotate-secret: %w", err)
	}
	fmt.Fprintf(m.Stdout, "app %s has a new secret\n", id)
	fmt.Fprintf(m.Stdout, "secret: %s\n", secret)
	return nil
}
