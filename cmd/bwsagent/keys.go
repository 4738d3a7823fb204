package main

import (
	"context"
	"fmt"
)

func (m *Main) keysRotateSigning(ctx context.Context, args []string) error {
	fs := m.newFlagSet("keys rotate-signing", "[options]",
		`Makes a new token-signing key current. Tokens signed with the old key stay
valid until they expire (10 minutes); keys retired longer ago are dropped.
`+adminHelp)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, _, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	k, err := svc.RotateSigningKey(ctx)
	if err != nil {
		return fmt.Errorf("keys rotate-signing: %w", err)
	}
	fmt.Fprintf(m.Stdout, "new token-signing key %s; %d previous key(s) still accepted, %d dropped\n", k.ID, k.Previous, k.Pruned)
	return nil
}

func (m *Main) keysRotateTemplate(ctx context.Context, args []string) error {
	fs := m.newFlagSet("keys rotate-template", "[options]",
		`Makes a new template key current and reseals every template and signing key
in the store with it, in one transaction; the key file ('templateKeyFile',
default <data-dir>/template.key) is rewritten. A crash halfway is finished on
the next start. Back up the new key file: older backups need the old key.
A key given as a systemd credential cannot be rewritten: point
'templateKeyFile' at a writable file for the rotation.
`+adminHelp)
	cf := addConfigFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, cfg, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	defer svc.Close()
	n, err := svc.RotateTemplateKey(ctx)
	if err != nil {
		return fmt.Errorf("keys rotate-template: %w", err)
	}
	fmt.Fprintf(m.Stdout, "new template key in %s; %d records resealed\n", cfg.TemplateKeyFile, n)
	return nil
}
