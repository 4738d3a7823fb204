package api

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/store"
)

// TestServiceAPI drives the methods the admin socket, the CLI and capture
// sessions call, which share the HTTP handlers' code path.
func TestServiceAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	face := fileDataURL(t, gocvImage(t, "face.jpg"))
	class := bws.BCID{Storage: "bws", Partition: 12, ClassID: 42}

	opts := DefaultTokenOptions()
	opts.LiveDetection = false
	tok, err := f.srv.IssueToken(ctx, "app1", class, bws.OpEnroll, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.IssueToken(ctx, "nobody", class, bws.OpEnroll, opts); !errors.Is(err, ErrForbidden) {
		t.Errorf("unknown app: %v", err)
	}
	for i := 0; i < 2; i++ {
		res, err := f.srv.Upload(ctx, tok, []byte(face), "", i)
		if err != nil || !res.Accepted || res.Warnings == nil {
			t.Fatalf("Upload: %+v %v", res, err)
		}
	}
	if _, err := f.srv.Upload(ctx, tok, []byte(face), "sideways", 0); !errors.Is(err, ErrBadRequest) {
		t.Errorf("bad tag: %v", err)
	}
	if _, err := f.srv.Perform(ctx, tok, bws.OpVerify, false); !errors.Is(err, ErrTaskNotAllowed) {
		t.Errorf("verify with an enroll token: %v", err)
	}
	res, err := f.srv.Perform(ctx, tok, bws.OpEnroll, false)
	if err != nil || !res.Success || res.Action != "enrollment" || res.BCID != class {
		t.Fatalf("Perform: %+v %v", res, err)
	}
	if _, err := f.srv.Perform(ctx, tok, bws.OpEnroll, false); !errors.Is(err, ErrNoSamples) {
		t.Errorf("samples reused: %v", err)
	}
	if _, err := f.srv.Perform(ctx, "junk", bws.OpEnroll, false); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("bad token: %v", err)
	}

	cs, err := f.srv.Classes(ctx, "bws", 12)
	if err != nil || len(cs) != 1 || cs[0].BCID != class || cs[0].Templates != 1 {
		t.Fatalf("Classes: %+v %v", cs, err)
	}
	if cs, _ := f.srv.Classes(ctx, "bws", 13); len(cs) != 0 {
		t.Errorf("Classes of another partition: %+v", cs)
	}
	if err := f.srv.DeleteClass(ctx, class); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.DeleteClass(ctx, class); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	es, _ := f.db.Audit(ctx, 0, 100)
	if last := es[len(es)-1]; last.Action != "deleteclass" || last.App != "admin" || last.BCID != "bws/12/42" {
		t.Errorf("audit of the admin delete: %+v", last)
	}
}

// TestStaleTemplates: templates of another model are marked stale when the
// agent starts; such a class counts as not enrolled until re-enrolled.
func TestStaleTemplates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := bws.BCID{Storage: "bws", Partition: 12, ClassID: 8}
	vec := make([]float32, 512)
	vec[0] = 1
	if _, err := f.db.AddTemplates(ctx, old, store.Template{Model: "facenet@0", ModelVersion: "1", Vector: vec, Quality: 1}); err != nil {
		t.Fatal(err)
	}
	f.restart()
	cs, err := f.srv.Classes(ctx, "bws", 12)
	if err != nil || len(cs) != 1 || cs[0].Stale != 1 {
		t.Fatalf("classes: %+v %v", cs, err)
	}
	if r := f.do(req{path: "isenrolled?bcid=bws.12.8", app: "app1"}); r.Code != http.StatusNotFound {
		t.Errorf("isenrolled with stale templates only: %v", r)
	}
	photo := fileDataURL(t, gocvImage(t, "face.jpg"))
	tok := f.token("app1", "bcid=bws.12.8&livedetection=false")
	f.uploadAll(tok, []string{photo})
	if res := f.perform(tok, "verify"); res.Error != CodeNoTemplateAvailable {
		t.Errorf("verify against stale templates: %+v", res)
	}
	// Re-enrolling makes the class usable again; the new template ranks
	// before the stale one.
	tok = f.token("app1", "bcid=bws.12.8&task=enroll&livedetection=false")
	f.uploadAll(tok, []string{photo})
	f.perform(tok, "enroll")
	ts, _ := f.db.Templates(ctx, old)
	if len(ts) != 2 || ts[0].Stale || ts[0].Model != face.EmbeddingModel || ts[0].ModelVersion != TemplateVersion {
		t.Fatalf("templates after re-enrolling: %+v", ts)
	}
	if r := f.do(req{path: "isenrolled?bcid=bws.12.8", app: "app1"}); r.Code != http.StatusOK {
		t.Errorf("isenrolled after re-enrolling: %v", r)
	}
}

// TestJobTimeout: a call that runs past JobTimeout answers
// ExecutionOfJobTimedOut, stores that as the token's result, and counts the
// try. It runs on the service methods in one goroutine, so changing the
// timeout between the calls races with nothing.
func TestJobTimeout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	class := bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}
	opts := DefaultTokenOptions()
	opts.LiveDetection = false
	tok, err := f.srv.IssueToken(ctx, "app1", class, bws.OpEnroll, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := f.srv.Upload(ctx, tok, []byte(fileDataURL(t, gocvImage(t, "face.jpg"))), "any", 1); err != nil || !res.Accepted {
		t.Fatalf("upload: %+v %v", res, err)
	}
	f.srv.cfg.JobTimeout = time.Nanosecond // the store write finds the deadline passed
	res, err := f.srv.Perform(ctx, tok, bws.OpEnroll, false)
	if err != nil || res.Success || res.Error != CodeExecutionOfJobTimedOut {
		t.Fatalf("got %+v %v", res, err)
	}
	if ok, _ := f.srv.IsEnrolled(ctx, class); ok {
		t.Error("a timed-out enrollment left a template")
	}
	c, _ := f.srv.tokens.Validate(tok)
	st, err := f.db.Token(ctx, c.TokenID)
	if err != nil || st.TriesUsed != 1 || string(st.Result) != `{"Success":false,"Action":"enrollment","BCID":"bws/12/1","Error":"ExecutionOfJobTimedOut"}` {
		t.Errorf("token state: %+v %s %v", st, st.Result, err)
	}
}
