package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/bwsagent/bwsagent/face/models"
)

func (m *Main) modelsBundle(ctx context.Context, args []string) error {
	fs := m.newFlagSet("models bundle", "[options] FILE",
		`Writes the cached models as a bundle (a tar.gz of the files, the manifest with
their sha256 and a SHA256SUMS) for devices without registry access: copy it
over and run 'bwsagent models install FILE' there. Every file is checked
against the manifest while it is written, so a corrupt cache is never bundled.`)
	dir := modelsDirFlag(fs)
	testdata := fs.Bool("testdata", false, "also bundle the sample photos the tests use")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("models bundle needs one FILE")
	}
	d, err := modelsDir(*dir)
	if err != nil {
		return err
	}
	pkgs, err := pinnedPackages(*testdata)
	if err != nil {
		return err
	}
	if err := (models.Cache{Dir: d}).BundleFile(ctx, fs.Arg(0), pkgs); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "bundled %s from %s into %s\n", specs(pkgs), d, fs.Arg(0))
	return nil
}

func (m *Main) modelsInstall(ctx context.Context, args []string) error {
	fs := m.newFlagSet("models install", "[options] FILE",
		`Installs a bundle made by 'bwsagent models bundle' into the model cache.
Every file is checked against the manifest built into this binary — not the
bundle's own — so a tampered bundle, or one made for other models, is
rejected and nothing is installed. Files are staged and verified first,
then renamed into place.`)
	dir := modelsDirFlag(fs)
	ifNeeded := fs.Bool("if-needed", false, "do nothing when the cache already holds every model intact (then FILE may be absent); the service runs this at start")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("models install needs one FILE")
	}
	d, err := modelsDir(*dir)
	if err != nil {
		return err
	}
	man, err := models.Default()
	if err != nil {
		return err
	}
	c := models.Cache{Dir: d}
	if *ifNeeded {
		if err := verifyAll(c, man.Kind(models.KindModel)); err == nil {
			fmt.Fprintf(m.Stderr, "models in %s already installed and verified\n", d)
			return nil
		} else if _, statErr := os.Stat(fs.Arg(0)); errors.Is(statErr, os.ErrNotExist) {
			return fmt.Errorf("%w; no bundle at %s to install from", err, fs.Arg(0))
		}
	}
	got, err := c.InstallFile(ctx, fs.Arg(0), man, models.KindModel)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "installed and verified %s in %s\n", specs(got.Packages), d)
	return nil
}

func verifyAll(c models.Cache, pkgs []models.Package) error {
	for _, p := range pkgs {
		if err := c.Verify(p); err != nil {
			return err
		}
	}
	return nil
}

func specs(pkgs []models.Package) string {
	s := make([]string, len(pkgs))
	for i, p := range pkgs {
		s[i] = p.Spec()
	}
	return strings.Join(s, ", ")
}
