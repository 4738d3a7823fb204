package main

import (
	"context"
	"fmt"

	"github.com/bwsagent/bwsagent/agent/admin"
)

func (m *Main) storeCheck(ctx context.Context, args []string) error {
	fs := m.newFlagSet("store check", "[options]",
		`Checks the store of a stopped agent: bbolt's consistency check over every
page, then every record decoded and every sealed record opened with the
template key. Run it after a crash or power cut; exit status 0 means nothing
is half-written. The store is opened read-write only to take its lock; the
check itself changes nothing.`)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("store check takes no arguments, got %q", fs.Args())
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	db, _, _, err := admin.OpenStore(ctx, cfg, admin.StoreOptions{})
	if err != nil {
		return fmt.Errorf("store check: %w (is the agent running? stop it first)", err)
	}
	defer db.Close()
	if err := db.Check(ctx); err != nil {
		return fmt.Errorf("store check: %s: %w", db.Path(), err)
	}
	fmt.Fprintf(m.Stdout, "store %s: ok\n", db.Path())
	return nil
}
