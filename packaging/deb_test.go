// Package packaging holds the Debian packaging script; its test builds the
// package and inspects it.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDeb builds the binary and the models bundle, packages them with
// deb.sh, extracts the package into a scratch root with dpkg -x and checks
// its files, modes, control fields and that apt knows every dependency.
func TestDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a package")
	}
	need(t, "dpkg-deb", "dpkg", "readelf")
	tmp := t.TempDir()
	bin := os.Getenv("BWSAGENT_DEB_BIN") // a prebuilt binary (make deb)
	if bin == "" {
		bin = filepath.Join(tmp, "bwsagent")
		run(t, "go", "build", "-o", bin, "../cmd/bwsagent")
	}
	bundle := filepath.Join(tmp, "models.tar.gz")
	out, err := exec.Command(bin, "models", "bundle", bundle).CombinedOutput()
	if err != nil {
		if os.Getenv("BWSAGENT_REQUIRE_MODELS") == "1" {
			t.Fatalf("models bundle: %v\n%s", err, out)
		}
		t.Skipf("no models to bundle (run 'bwsagent models fetch'): %s", out)
	}
	deb := strings.TrimSpace(run(t, "./deb.sh", bin, bundle, filepath.Join(tmp, "out")))

	info := run(t, "dpkg-deb", "--info", deb)
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^ ` + name + `: (.*)$`).FindStringSubmatch(info)
		if m == nil {
			t.Fatalf("no %s in control:\n%s", name, info)
		}
		return m[1]
	}
	if got := field("Package"); got != "bwsagent" {
		t.Errorf("Package %q", got)
	}
	if got, want := field("Architecture"), runtime.GOARCH; got != want {
		t.Errorf("Architecture %q, want %q", got, want)
	}
	depends := field("Depends")
	for _, want := range []string{"libc6 (>= 2.34)", "libopencv-core406", "libopencv-dnn406", "libopencv-imgproc406", "libopencv-imgcodecs406", "libopencv-videoio406", "libstdc++6"} {
		if !strings.Contains(depends, want) {
			t.Errorf("Depends lacks %s: %s", want, depends)
		}
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if !strings.Contains(info, script) {
			t.Errorf("no %s in the control archive", script)
		}
	}

	root := filepath.Join(tmp, "root")
	run(t, "dpkg-deb", "-x", deb, root)
	for path, mode := range map[string]os.FileMode{
		".":                                   0o755,
		"usr/bin/bwsagent":                    0o755,
		"lib/systemd/system/bwsagent.service": 0o644,
		"lib/systemd/system/bwsagent.socket":  0o644,
		"usr/share/bwsagent/models.tar.gz":    0o644,
		"usr/share/doc/bwsagent/copyright":    0o644,
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if _, err := os.Stat("../configs/bwsagent.yaml"); err == nil {
		if _, err := os.Stat(filepath.Join(root, "etc/bwsagent/bwsagent.yaml")); err != nil {
			t.Error(err)
		}
		ctrl := filepath.Join(tmp, "control")
		run(t, "dpkg-deb", "-e", deb, ctrl)
		if b, err := os.ReadFile(filepath.Join(ctrl, "conffiles")); err != nil || strings.TrimSpace(string(b)) != "/etc/bwsagent/bwsagent.yaml" {
			t.Errorf("conffiles: %q, %v", b, err)
		}
	}
	// No secret is shipped: the key is made by postinst on the device.
	if _, err := os.Stat(filepath.Join(root, "etc/bwsagent/template.key")); err == nil {
		t.Error("the package ships a template key")
	}

	// The extracted binary and bundle work: the bundle installs into a
	// scratch cache and passes the binary's own integrity check.
	cache := filepath.Join(tmp, "cache")
	run(t, filepath.Join(root, "usr/bin/bwsagent"), "models", "install", "--models-dir", cache, filepath.Join(root, "usr/share/bwsagent/models.tar.gz"))
	run(t, filepath.Join(root, "usr/bin/bwsagent"), "models", "install", "--if-needed", "--models-dir", cache, "/nonexistent.tar.gz")

	// Every dependency is a package apt knows, with an installable version.
	if _, err := exec.LookPath("apt-cache"); err != nil {
		t.Log("apt-cache not installed: dependencies not resolved")
		return
	}
	for _, dep := range strings.Split(depends, ", ") {
		name := strings.Fields(dep)[0]
		pol := run(t, "apt-cache", "policy", name)
		if !regexp.MustCompile(`(?m)^\s+Candidate: [0-9]`).MatchString(pol) {
			t.Errorf("apt has no candidate for %s:\n%s", name, pol)
		}
	}
}
