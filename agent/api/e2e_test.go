package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/bwsagent/bwsagent/agent/bws"
)

// Two LFW identities: A is enrolled from three photos, B is the impostor.
const (
	personA = "Colin_Powell"
	personB = "Donald_Rumsfeld"
)

// TestEndToEndRecognition runs whole client flows over HTTP with the real
// engine on real faces: enroll, verify genuine and impostor, identify,
// never-enrolled class, /result, the audit log, and a restart.
func TestEndToEndRecognition(t *testing.T) {
	f := newFixture(t)
	a := lfw(t, personA, 1, 2, 3, 5, 6, 7)
	b := lfw(t, personB, 1, 2, 3, 4)

	enrollClass := func(bcid string, urls []string) {
		t.Helper()
		tok := f.token("app1", "bcid="+bcid+"&task=enroll&livedetection=false")
		f.uploadAll(tok, urls)
		if res := f.perform(tok, "enroll"); !res.Success {
			t.Fatalf("enroll %s: %+v", bcid, res)
		}
	}
	verifyRaw := func(bcid, url string) *resp {
		t.Helper()
		tok := f.token("app1", "bcid="+bcid+"&livedetection=false")
		f.uploadAll(tok, []string{url})
		return f.do(req{path: "verify", bearer: tok})
	}

	enrollClass("bws.12.100", a[:3])
	enrollClass("bws.12.200", b[:3])

	t.Run("genuine", func(t *testing.T) {
		if r := verifyRaw("bws.12.100", a[3]); string(r.Body) != `{"Success":true}` {
			t.Fatalf("verify A against A: %v", r)
		}
	})
	t.Run("impostor", func(t *testing.T) {
		if r := verifyRaw("bws.12.100", b[3]); r.Code != 200 || string(r.Body) != `{"Success":false}` {
			t.Fatalf("verify B against A: %v", r)
		}
	})
	t.Run("never enrolled", func(t *testing.T) {
		if r := verifyRaw("bws.12.300", a[3]); string(r.Body) != `{"Success":false,"Error":"NoTemplateAvailable"}` {
			t.Fatalf("verify never-enrolled class: %v", r)
		}
	})
	t.Run("identify", func(t *testing.T) {
		tok := f.token("app1", "bcid=bws.12.0&task=identify&livedetection=false")
		f.uploadAll(tok, a[4:5])
		res := f.perform(tok, "identify")
		if !res.Success || len(res.Matches) == 0 || res.Matches[0].ClassID != 100 || res.Matches[0].Storage != "bws" || res.Matches[0].Partition != 12 {
			t.Fatalf("identify A: %+v", res)
		}
		for _, m := range res.Matches {
			if m.ClassID == 200 {
				t.Errorf("B matched A's photo: %+v", res.Matches)
			}
		}
		// /result has BWS's other match shape.
		r := f.do(req{path: "result?access_token=" + tok, app: "app1"})
		var jr JobResult
		if err := json.Unmarshal(r.Body, &jr); err != nil || jr.Action != "identification" || len(jr.Matches) == 0 || jr.Matches[0].BCID != "bws/12/100" {
			t.Fatalf("result: %v %v", r, err)
		}
		// Another partition sees nothing.
		tok = f.token("app2", "bcid=bws.13.0&task=identify&livedetection=false")
		f.uploadAll(tok, a[4:5])
		if res := f.perform(tok, "identify"); res.Success || len(res.Matches) != 0 {
			t.Fatalf("identify in an empty partition: %+v", res)
		}
	})
	t.Run("autoenroll", func(t *testing.T) {
		before, _ := f.db.Templates(context.Background(), bws.BCID{Storage: "bws", Partition: 12, ClassID: 100})
		tok := f.token("app1", "bcid=bws.12.100&livedetection=false&autoenroll=true")
		f.uploadAll(tok, a[5:6])
		if res := f.perform(tok, "verify"); !res.Success {
			t.Fatalf("verify: %+v", res)
		}
		after, _ := f.db.Templates(context.Background(), bws.BCID{Storage: "bws", Partition: 12, ClassID: 100})
		if len(after) != len(before)+1 {
			t.Fatalf("templates %d → %d, want one more", len(before), len(after))
		}
	})
	t.Run("audit", func(t *testing.T) {
		es, err := f.db.Audit(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		actions := map[string]int{}
		for _, e := range es {
			actions[e.Action]++
			if e.App == "" || e.TokenID == "" || e.Result == "" {
				t.Errorf("incomplete audit entry %+v", e)
			}
			if len(e.Detail) > 200 {
				t.Errorf("audit detail too long to be words: %q", e.Detail)
			}
		}
		if actions["enrollment"] < 2 || actions["verification"] < 4 || actions["identification"] < 2 {
			t.Errorf("audit actions %v", actions)
		}
	})

	// A restart keeps templates (and the gallery), and tokens issued before
	// it, with their tries.
	tok := f.token("app1", "bcid=bws.12.100&livedetection=false&maxtries=2")
	f.uploadAll(tok, a[3:4])
	if res := f.perform(tok, "verify"); !res.Success {
		t.Fatalf("verify before restart: %+v", res)
	}
	f.restart()
	t.Run("restart", func(t *testing.T) {
		f.uploadAll(tok, a[3:4])
		if res := f.perform(tok, "verify"); !res.Success {
			t.Fatalf("try 2 after restart: %+v", res)
		}
		f.uploadAll(tok, a[3:4])
		if r := f.do(req{path: "verify", bearer: tok}); r.Code != http.StatusForbidden {
			t.Fatalf("try 3 after restart: %v, want 403", r)
		}
		tok := f.token("app1", "bcid=bws.12.0&task=identify&livedetection=false")
		f.uploadAll(tok, a[3:4])
		if res := f.perform(tok, "identify"); !res.Success || res.Matches[0].ClassID != 100 {
			t.Fatalf("identify after restart: %+v", res)
		}
	})
	t.Run("deleteclass", func(t *testing.T) {
		if r := f.do(req{method: http.MethodDelete, path: "deleteclass?bcid=bws/12/100", app: "app1"}); r.Code != 200 {
			t.Fatalf("deleteclass: %v", r)
		}
		if r := f.do(req{path: "isenrolled?bcid=bws.12.100", app: "app1"}); r.Code != 404 {
			t.Fatalf("isenrolled after delete: %v", r)
		}
		tok := f.token("app1", "bcid=bws.12.0&task=identify&livedetection=false")
		f.uploadAll(tok, a[3:4])
		if res := f.perform(tok, "identify"); res.Success {
			t.Fatalf("identify finds a deleted class: %+v", res)
		}
	})
}

// TestLiveness switches liveness on per token and per call, and checks
// that a still photo repeated never passes while a real head turn does.
func TestLiveness(t *testing.T) {
	f := newFixture(t)
	live := liveSeq(t)
	still := staticSeq(t)
	woman := videoFrames(t, liveClip, 2.0)[0]

	// Enroll the woman from her live head turn (token default: liveness on).
	tok := f.token("app1", "bcid=bws.12.7&task=enroll")
	f.uploadAll(tok, live)
	if res := f.perform(tok, "enroll"); !res.Success {
		t.Fatalf("enroll with a live sequence: %+v", res)
	}

	tests := []struct {
		name  string
		query string // /token
		route string
		urls  []string
		want  string
	}{
		{"liveness off, one frame", "bcid=bws.12.7&livedetection=false", "verify", []string{woman}, `{"Success":true}`},
		{"token requires liveness, still", "bcid=bws.12.7", "verify", still, `{"Success":false,"Error":"LiveDetectionFailed"}`},
		{"token requires liveness, one sample", "bcid=bws.12.7", "verify", []string{woman}, `{"Success":false,"Error":"NotEnoughSamples"}`},
		{"param cannot switch it off", "bcid=bws.12.7", "verify?livedetection=false", still, `{"Success":false,"Error":"LiveDetectionFailed"}`},
		{"param switches it on", "bcid=bws.12.7&livedetection=false", "verify?livedetection=true", still, `{"Success":false,"Error":"LiveDetectionFailed"}`},
		{"live verify", "bcid=bws.12.7", "verify", live, `{"Success":true}`},
		{"livenessdetection live", "task=livenessdetection", "livenessdetection", live, `{"Success":true}`},
		{"livenessdetection still", "task=livenessdetection", "livenessdetection", still, `{"Success":false,"Error":"LiveDetectionFailed"}`},
		{"live identify", "bcid=bws.12.0&task=identify", "identify", live, `{"Success":true,"Matches":[{"Score":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.token("app1", tt.query)
			f.uploadAll(tok, tt.urls)
			r := f.do(req{path: tt.route, bearer: tok})
			if r.Code != 200 || !strings.HasPrefix(string(r.Body), tt.want) {
				t.Fatalf("got %v, want %s", r, tt.want)
			}
		})
	}

	t.Run("livedetection route", func(t *testing.T) {
		for _, tc := range []struct {
			a, b string
			want string
		}{{live[0], live[3], "true"}, {still[0], still[1], "false"}, {live[0], live[0], "false"}} {
			r := f.do(req{method: http.MethodPost, path: "livedetection", app: "app1", body: `{"liveimage1":"` + tc.a + `","liveimage2":"` + tc.b + `"}`})
			if r.Code != 200 || string(r.Body) != tc.want {
				t.Errorf("got %v, want %s", r, tc.want)
			}
		}
	})
}

// TestChallengeResponse: the tags of a try must be that try's challenge
// array, and the head must move that way.
func TestChallengeResponse(t *testing.T) {
	f := newFixture(t)
	// any, then the face moves to image-left, then back to image-right.
	frames := videoFrames(t, liveClip, 6.07, 7.0, 8.63)
	ch := bws.Challenge{{bws.Right, bws.Left}, {bws.Left, bws.Right}}
	issue := func() string {
		opts := DefaultTokenOptions()
		opts.Challenge, opts.MaxTries, opts.Sequence = true, 2, ch
		tok, err := f.srv.IssueToken(context.Background(), "app1", bws.BCID{}, bws.OpLivenessDetection, opts)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// Try 1 asks right, left: the motion left, right fails; try 2 asks
	// left, right and passes with the same samples.
	tok := issue()
	f.uploadAll(tok, frames, "any", "left", "right")
	if res := f.perform(tok, "livenessdetection"); res.Success || res.Error != CodeChallengeResponseFailed {
		t.Fatalf("try 1 (tags of try 2): %+v", res)
	}
	f.uploadAll(tok, frames, "any", "left", "right")
	if res := f.perform(tok, "livenessdetection"); !res.Success {
		t.Fatalf("try 2: %+v", res)
	}

	// Tags that follow the challenge but not the motion fail too.
	tok = issue()
	f.uploadAll(tok, frames, "any", "right", "left")
	if res := f.perform(tok, "livenessdetection"); res.Success || res.Error != CodeChallengeResponseFailed {
		t.Fatalf("tags against the motion: %+v", res)
	}
}
