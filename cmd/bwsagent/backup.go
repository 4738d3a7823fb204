package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bwsagent/bwsagent/agent/admin"
)

func (m *Main) backup(ctx context.Context, args []string) error {
	fs := m.newFlagSet("backup", "[options] FILE",
		`Writes a consistent snapshot of the store (apps, keys, templates, token
state, audit log) to FILE ("-": standard output), encrypted with a key derived
from the template key: keep the template key file too, restoring needs it.
The running agent keeps serving meanwhile.
`+adminHelp)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("backup needs one FILE")
	}
	file := fs.Arg(0)
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	if file == "-" {
		_, err := svc.Backup(ctx, m.Stdout)
		return err
	}
	// Write beside FILE and rename, so FILE is never a partial backup.
	f, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	n, err := svc.Backup(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(m.Stdout, "backup of a %d-byte store written to %s\n", n, file)
	return nil
}

func (m *Main) restore(ctx context.Context, args []string) error {
	fs := m.newFlagSet("restore", "[options] FILE",
		`Replaces the store with the backup in FILE ("-": standard input). The agent
must be stopped (systemctl stop bwsagent). The template key file must be the
one the backup was made with. The backup is decrypted and fully checked
before it replaces anything; the store it replaces is kept as
<data-dir>/bwsagent.db.pre-restore.`)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("restore needs one FILE")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if c, err := admin.Dial(ctx, cfg.AdminSocket()); err == nil {
		c.Close()
		return fmt.Errorf("restore: %w: stop it first (systemctl stop bwsagent), then restore", admin.ErrAgentRunning)
	}
	var r io.Reader = os.Stdin
	if fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		r = f
	}
	kept := ""
	if _, err := os.Stat(cfg.StorePath()); err == nil {
		kept = cfg.StorePath() + ".pre-restore"
		if err := copyFile(cfg.StorePath(), kept); err != nil {
			return fmt.Errorf("restore: keep the current store: %w", err)
		}
	}
	if err := admin.Restore(ctx, cfg, r); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(m.Stdout, "store %s restored from %s\n", cfg.StorePath(), fs.Arg(0))
	if kept != "" {
		fmt.Fprintf(m.Stdout, "the previous store is kept as %s\n", kept)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(err, os.Remove(dst))
	}
	return nil
}
