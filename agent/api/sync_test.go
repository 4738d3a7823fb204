package api

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/store"
)

// fakeSync counts notifications and reports a fixed status.
type fakeSync struct{ notified atomic.Int32 }

func (f *fakeSync) Notify() { f.notified.Add(1) }
func (f *fakeSync) Status() any {
	return struct {
		Protocol string `json:"Protocol"`
		Pending  int    `json:"Pending"`
	}{"bws2", 1}
}

// outboxJobs lists the pending (or dead) jobs with their samples.
func outboxJobs(t *testing.T, db *store.DB) []store.OutboxJob {
	t.Helper()
	ctx := context.Background()
	jobs, err := db.OutboxJobs(ctx, false, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		if jobs[i].Samples, err = db.OutboxSamples(ctx, jobs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return jobs
}

// TestSyncMode: with Deps.Sync, an enrollment (and an auto-enrolling
// verify) writes an outbox job with the accepted sample files in upload
// order, a deletion a delete job that supersedes the class's enroll jobs,
// a full outbox refuses the enrollment as a whole (503 SyncOutboxFull) and
// /status reports the sender.
func TestSyncMode(t *testing.T) {
	f := newFixture(t)
	fs := &fakeSync{}
	f.sync = fs
	f.restart()
	ctx := context.Background()
	raw1, err := os.ReadFile(gocvImage(t, "face.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	raw2, err := os.ReadFile(gocvImage(t, "face-detect.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	noFace := pngDataURL(t, greyImage(120, 100))

	tok := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	// Index order, not arrival order, is upload order; a refused sample is
	// not part of the job.
	if res := f.upload(tok, dataURL("jpeg", raw2), "index=2"); !res.Accepted {
		t.Fatalf("upload: %+v", res)
	}
	if res := f.upload(tok, noFace, "index=0"); res.Accepted {
		t.Fatalf("no-face upload accepted: %+v", res)
	}
	if res := f.upload(tok, dataURL("jpeg", raw1), "index=1"); !res.Accepted {
		t.Fatalf("upload: %+v", res)
	}
	if res := f.perform(tok, "enroll"); !res.Success {
		t.Fatalf("enroll: %+v", res)
	}
	jobs := outboxJobs(t, f.db)
	if len(jobs) != 1 || jobs[0].Kind != store.OutboxEnroll || jobs[0].BCID.String() != "bws/12/1" ||
		len(jobs[0].Samples) != 2 || !bytes.Equal(jobs[0].Samples[0], raw1) || !bytes.Equal(jobs[0].Samples[1], raw2) {
		t.Fatalf("outbox after enroll: %+v", jobs)
	}
	if fs.notified.Load() != 1 {
		t.Errorf("notified %d times, want 1", fs.notified.Load())
	}
	if n := heldFileBytes(f.srv); n != 0 {
		t.Errorf("%d sample file bytes held after the enrollment", n)
	}

	// A verify does not sync; an auto-enrolling one does.
	tok = f.token("app1", "bcid=bws.12.1&livedetection=false")
	f.uploadAll(tok, []string{dataURL("jpeg", raw1)})
	if res := f.perform(tok, "verify"); !res.Success {
		t.Fatalf("verify: %+v", res)
	}
	if n := len(outboxJobs(t, f.db)); n != 1 {
		t.Fatalf("a verify queued a job: %d jobs", n)
	}
	tok = f.token("app1", "bcid=bws.12.1&livedetection=false&autoenroll=true")
	f.uploadAll(tok, []string{dataURL("jpeg", raw2)})
	if res := f.perform(tok, "verify"); !res.Success {
		t.Fatalf("verify: %+v", res)
	}
	if jobs := outboxJobs(t, f.db); len(jobs) != 2 || !bytes.Equal(jobs[1].Samples[0], raw2) {
		t.Fatalf("outbox after autoenroll: %+v", jobs)
	}

	t.Run("status", func(t *testing.T) {
		golden(t, "status_sync", goldenResponse(f.do(req{path: "status", app: "app1"})))
	})

	// Deleting the class supersedes its enroll jobs: one delete job left.
	if r := f.do(req{method: "DELETE", path: "deleteclass?bcid=bws.12.1", app: "app1"}); r.Code != 200 {
		t.Fatalf("deleteclass: %v", r)
	}
	jobs = outboxJobs(t, f.db)
	if len(jobs) != 1 || jobs[0].Kind != store.OutboxDelete || jobs[0].BCID.String() != "bws/12/1" {
		t.Fatalf("outbox after deleteclass: %+v", jobs)
	}
	if fs.notified.Load() != 3 {
		t.Errorf("notified %d times, want 3", fs.notified.Load())
	}
	// A class unknown locally is nothing to tell the centre.
	if r := f.do(req{method: "DELETE", path: "deleteclass?bcid=bws.12.555", app: "app1"}); r.Code != 200 || len(outboxJobs(t, f.db)) != 1 {
		t.Fatalf("deleteclass of a missing class: %v", r)
	}

	t.Run("outbox full", func(t *testing.T) {
		if err := f.db.SetOutboxLimits(ctx, store.OutboxLimits{MaxJobs: 1}); err != nil {
			t.Fatal(err)
		}
		tok := f.token("app1", "bcid=bws.12.2&task=enroll&livedetection=false")
		f.uploadAll(tok, []string{dataURL("jpeg", raw1)})
		golden(t, "enroll_sync_outbox_full", goldenResponse(f.do(req{path: "enroll", bearer: tok})))
		if ok, err := f.srv.IsEnrolled(ctx, bws.BCID{Storage: "bws", Partition: 12, ClassID: 2}); err != nil || ok {
			t.Errorf("refused enrollment enrolled locally: %v %v", ok, err)
		}
	})
}

// Without Deps.Sync nothing is queued and no sample file is kept.
func TestSyncModeOff(t *testing.T) {
	f := newFixture(t)
	tok := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	f.uploadAll(tok, []string{fileDataURL(t, gocvImage(t, "face.jpg"))})
	if held := heldFileBytes(f.srv); held != 0 {
		t.Errorf("%d sample file bytes held without sync", held)
	}
	if res := f.perform(tok, "enroll"); !res.Success {
		t.Fatalf("enroll: %+v", res)
	}
	st, err := f.db.OutboxStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.SampleBytes != 0 {
		t.Errorf("outbox without sync: %+v", st)
	}
	if r := f.do(req{path: "status", app: "app1"}); bytes.Contains(r.Body, []byte(`"Sync"`)) {
		t.Errorf("/status without sync: %s", r.Body)
	}
}

func heldFileBytes(s *Server) int {
	s.held.mu.Lock()
	defer s.held.mu.Unlock()
	return s.held.fileBytes
}
