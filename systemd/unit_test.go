// Package systemd holds bwsagent's systemd units; its test checks them with
// systemd-analyze (verify, and the offline security rating).
package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest 'systemd-analyze security' rating accepted
// (0 is best, 10 worst); the unit rates 1.5.
const maxExposure = 2.0

func analyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	return p
}

// stage copies the units into a temp dir with ExecStart pointing at an
// executable stub: verify checks that the command exists, and the binary is
// not installed on a build machine.
func stage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	stub := filepath.Join(dir, "bwsagent")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bwsagent.service", "bwsagent.socket"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/usr/bin/bwsagent ", stub+" ")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVerify(t *testing.T) {
	sa := analyze(t)
	dir := stage(t)
	for _, unit := range []string{"bwsagent.service", "bwsagent.socket"} {
		cmd := exec.Command(sa, "verify", "--man=no", filepath.Join(dir, unit))
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
}

var overall = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func TestSecurityRating(t *testing.T) {
	sa := analyze(t)
	dir := stage(t)
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", filepath.Join(dir, "bwsagent.service")).CombinedOutput()
	if err != nil {
		// It exits non-zero only when the rating exceeds --threshold (100 by default).
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := overall.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall rating in:\n%s", out)
	}
	got, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security --offline=true: %.1f", got)
	if got > maxExposure {
		t.Errorf("exposure %.1f, want at most %.1f:\n%s", got, maxExposure, out)
	}
}

// TestDirectives pins what the daemon relies on; systemd-analyze accepts a
// unit without them.
func TestDirectives(t *testing.T) {
	b, err := os.ReadFile("bwsagent.service")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			have[line] = true
		}
	}
	for _, want := range []string{
		"Type=notify", "NotifyAccess=main", "Restart=on-failure", "DynamicUser=yes",
		"SupplementaryGroups=video", "DeviceAllow=char-video4linux rw",
		"StateDirectory=bwsagent", "CacheDirectory=bwsagent", "ConfigurationDirectory=bwsagent",
		"LoadCredential=template.key:/etc/bwsagent/template.key",
		"ExecStart=/usr/bin/bwsagent serve --config /etc/bwsagent/bwsagent.yaml",
		"ProtectSystem=strict", "NoNewPrivileges=yes", "SystemCallFilter=@system-service",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	} {
		if !have[want] {
			t.Errorf("bwsagent.service lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^WatchdogSec=[1-9]`).Match(b) {
		t.Error("bwsagent.service has no WatchdogSec=")
	}
}
