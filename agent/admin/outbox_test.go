package admin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/store"
)

// The outbox operations work the same over the socket and on the store.
func TestOutboxBothModes(t *testing.T) {
	for _, mode := range []string{"socket", "direct"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			cfg := testConfig(t)
			var a *agentStub
			if mode == "socket" {
				a = startAgent(t, cfg)
			}
			svc, err := Connect(ctx, cfg, true)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			db := dbOf(t, svc, a)
			class := bws.BCID{Storage: "bws", Partition: 1, ClassID: 7}
			jobs := make([]store.OutboxJob, 3)
			for i := range jobs {
				if jobs[i], err = db.EnqueueOutbox(ctx, store.OutboxJob{Kind: store.OutboxEnroll, BCID: class, Samples: [][]byte{[]byte("jpeg")}}); err != nil {
					t.Fatal(err)
				}
			}
			for _, j := range jobs[:2] {
				if err := db.MoveOutboxToDead(ctx, j.Seq, j.ID, "enroll: HTTP 400: NoFaceFound"); err != nil {
					t.Fatal(err)
				}
			}

			rep, err := svc.OutboxList(ctx, OutboxRequest{Dead: true})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(rep.Output, jobs[0].ID.String()) || !strings.Contains(rep.Output, "NoFaceFound") || !strings.Contains(rep.Output, "2 dead letters") {
				t.Errorf("dead letters:\n%s", rep.Output)
			}
			rep, err = svc.OutboxList(ctx, OutboxRequest{JSON: true})
			if err != nil || strings.Count(rep.Output, "\n") != 1 || !strings.Contains(rep.Output, `"kind":"enroll"`) {
				t.Errorf("pending as JSON: %q %v", rep.Output, err)
			}

			rep, err = svc.OutboxRetry(ctx, OutboxRequest{IDs: []string{jobs[0].ID.String(), jobs[2].ID.String()}})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Count != 1 || !strings.Contains(rep.Output, "requeued "+jobs[0].ID.String()) || !strings.Contains(rep.Failed, jobs[2].ID.String()) {
				t.Errorf("retry: %+v", rep)
			}
			rep, err = svc.OutboxDrop(ctx, OutboxRequest{All: true})
			if err != nil || rep.Count != 1 || !strings.Contains(rep.Output, "dropped "+jobs[1].ID.String()) {
				t.Errorf("drop all dead: %+v %v", rep, err)
			}
			st, err := db.OutboxStats(ctx)
			if err != nil || st.Pending != 2 || st.Dead != 0 {
				t.Errorf("after retry and drop: %+v %v", st, err)
			}
			if _, err := svc.OutboxRetry(ctx, OutboxRequest{IDs: []string{"nope"}}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("malformed id: %v", err)
			}
			if _, err := svc.OutboxDrop(ctx, OutboxRequest{}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("no jobs named: %v", err)
			}
			if a != nil {
				a.mu.Lock()
				n := a.outbox
				a.mu.Unlock()
				if n != 2 {
					t.Errorf("the sender was notified %d times, want 2", n)
				}
			}
		})
	}
}
