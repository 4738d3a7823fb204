package api

import (
	"context"
	"fmt"
	"sync"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/enroll"
	"github.com/bwsagent/bwsagent/face"
	"github.com/bwsagent/bwsagent/store"
)

// galleries holds one in-memory 1:N index per storage partition, mirroring
// the store's current (not stale) templates. Writers hold mu across the
// store read and the index update so two enrollments of one class cannot
// interleave their refreshes.
type galleries struct {
	db *store.DB
	mu sync.Mutex
	m  map[partitionKey]*enroll.Gallery
}

type partitionKey struct {
	storage   string
	partition int
}

// usable reports whether a stored template can be compared with probes of
// the current model.
func usable(t store.Template) bool {
	return !t.Stale && t.Model == face.EmbeddingModel && t.ModelVersion == TemplateVersion
}

// loadGalleries reads every usable template of the store.
func loadGalleries(ctx context.Context, db *store.DB) (*galleries, int, error) {
	g := &galleries{db: db, m: map[partitionKey]*enroll.Gallery{}}
	parts := map[partitionKey]bool{}
	err := db.ForEachClass(ctx, "", -1, func(ci store.ClassInfo) error {
		parts[partitionKey{ci.BCID.Storage, ci.BCID.Partition}] = true
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list classes: %w", err)
	}
	n := 0
	for pk := range parts {
		err := db.ForEachTemplate(ctx, pk.storage, pk.partition, func(classID int64, t store.Template) error {
			if !usable(t) {
				return nil
			}
			n++
			return g.gallery(pk, len(t.Vector)).Add(classID, t.Vector)
		})
		if err != nil {
			return nil, 0, fmt.Errorf("load templates of %s/%d: %w", pk.storage, pk.partition, err)
		}
	}
	return g, n, nil
}

// gallery returns the partition's index, creating it. Callers hold mu or
// are the only user (loading).
func (g *galleries) gallery(pk partitionKey, dim int) *enroll.Gallery {
	gl := g.m[pk]
	if gl == nil {
		gl = enroll.NewGallery(dim)
		g.m[pk] = gl
	}
	return gl
}

// get returns the partition's index or nil.
func (g *galleries) get(storage string, partition int) *enroll.Gallery {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[partitionKey{storage, partition}]
}

// refresh replaces the class's entries with its usable templates in the
// store (after an enrollment, whose cap may have dropped old ones).
func (g *galleries) refresh(ctx context.Context, c bws.BCID) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	ts, err := g.db.Templates(ctx, c)
	if err != nil && !isStoreNotFound(err) {
		return err
	}
	pk := partitionKey{c.Storage, c.Partition}
	if gl := g.m[pk]; gl != nil {
		gl.Remove(c.ClassID)
	}
	for _, t := range ts {
		if !usable(t) {
			continue
		}
		if err := g.gallery(pk, len(t.Vector)).Add(c.ClassID, t.Vector); err != nil {
			return err
		}
	}
	return nil
}

// remove drops a class.
func (g *galleries) remove(c bws.BCID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gl := g.m[partitionKey{c.Storage, c.Partition}]; gl != nil {
		gl.Remove(c.ClassID)
	}
}
