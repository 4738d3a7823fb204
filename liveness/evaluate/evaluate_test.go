package evaluate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bwsagent/bwsagent/liveness"
	"github.com/bwsagent/bwsagent/liveness/dataset"
)

// TestReportJSON pins the report's JSON shape: attack types under their
// own names with {cases, accepted}, bona fide with {cases, rejected}.
func TestReportJSON(t *testing.T) {
	results := []CaseResult{
		{Name: "a", BonaFide: true, Challenge: true, Decision: liveness.Decision{Live: true, ChallengePassed: true}},
		{Name: "b", BonaFide: true, Challenge: true, Decision: liveness.Decision{Code: liveness.CodeChallengeResponseFailed}},
		{Name: "c", BonaFide: true, Decision: liveness.Decision{Live: true}},
		{Name: "d", Attack: "print-tilted", Decision: liveness.Decision{Code: liveness.CodeLiveDetectionFailed}},
		{Name: "e", Attack: "screen", Decision: liveness.Decision{Live: true}},
		{Name: "f", Attack: "screen", Decision: liveness.Decision{Code: liveness.CodeNotEnoughSamples}},
	}
	data, err := json.Marshal(Summarise(results))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apcer":{"print-tilted":0,"screen":0.5},"bpcer":0.3333333333333333,"challenge_pass_rate":0.5,` +
		`"counts":{"bona-fide":{"cases":3,"rejected":1},"print-tilted":{"cases":1,"accepted":0},"screen":{"cases":2,"accepted":1}}}`
	if string(data) != want {
		t.Errorf("report JSON\n got %s\nwant %s", data, want)
	}
}

// TestReadCases checks the layout reader: natural image order, tags
// padded to the image count, label spellings, folders without meta.json
// skipped.
func TestReadCases(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, meta string, files ...string) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if meta != "" {
			if err := os.WriteFile(filepath.Join(d, "meta.json"), []byte(meta), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(d, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("a", `{"label":"bona-fide","tags":["any","LEFT"]}`, "10.jpg", "2.jpg", "1.png", "notes.txt")
	mk("b", `{"label":"spoof","attack":"","tags":["any","any"]}`, "0001.jpg", "0002.jpg")
	mk("c", "", "0001.jpg")
	cases, err := dataset.ReadCases(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 {
		t.Fatalf("%d cases, want 2", len(cases))
	}
	a, b := cases[0], cases[1]
	var names []string
	for _, p := range a.Images {
		names = append(names, filepath.Base(p))
	}
	if got := names; len(got) != 3 || got[0] != "1.png" || got[1] != "2.jpg" || got[2] != "10.jpg" {
		t.Errorf("image order %v", got)
	}
	if !a.BonaFide() || !a.Challenge() || a.Tags[1] != "left" || a.Tags[2] != "any" || len(a.Notes) != 1 {
		t.Errorf("case a: %+v", a)
	}
	if b.BonaFide() || b.AttackType() != "unknown" || b.Challenge() {
		t.Errorf("case b: %+v", b)
	}
	if err := os.WriteFile(filepath.Join(dir, "b", "meta.json"), []byte(`{"label":"maybe"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.ReadCases(dir); err == nil {
		t.Error("unknown label accepted")
	}
}

// TestStale: a samples cache matches its set until a case is added,
// removed, or one of its files changes (a set generated again into the
// same folder keeps its names).
func TestStale(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		stale  bool
	}{
		{"unchanged", func(*testing.T, string) {}, false},
		{"image rewritten", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a", "0001.jpg"), "other bytes") }, true},
		{"meta changed", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "b", "meta.json"), `{"label":"attack","attack":"print","tags":["left"]}`)
		}, true},
		{"case added", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "c", "meta.json"), `{"label":"bona-fide"}`)
			write(t, filepath.Join(dir, "c", "0001.jpg"), "x")
		}, true},
		{"case removed", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "b")); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "a", "meta.json"), `{"label":"bona-fide","tags":["any"]}`)
			write(t, filepath.Join(dir, "a", "0001.jpg"), "jpeg")
			write(t, filepath.Join(dir, "b", "meta.json"), `{"label":"attack","attack":"print","tags":["any"]}`)
			write(t, filepath.Join(dir, "b", "0001.jpg"), "jpeg")
			cases, err := dataset.ReadCases(dir)
			if err != nil {
				t.Fatal(err)
			}
			var results []CaseResult
			for i := range cases {
				fp, err := cases[i].Fingerprint()
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, CaseResult{Name: cases[i].Name, Fingerprint: fp})
			}
			tt.change(t, dir)
			why, err := Stale(dir, results)
			if err != nil {
				t.Fatal(err)
			}
			if (why != "") != tt.stale {
				t.Errorf("Stale = %q, want stale %v", why, tt.stale)
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
