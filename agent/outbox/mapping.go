package outbox

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bwsagent/bwsagent/agent/bws"
)

// MapRule rewrites local BCIDs to central ones: classes of From
// ("storage" or "storage/partition") go to To (same forms), with
// ClassOffset added to the class id (to keep several devices' class ranges
// apart centrally). BWS 3 uses only the resulting class id.
type MapRule struct {
	From        string `yaml:"from"`
	To          string `yaml:"to"`
	ClassOffset int64  `yaml:"classOffset"`
}

type scope struct {
	storage   string
	partition int // -1: any
}

func parseScope(s string) (scope, error) {
	st, p, found := strings.Cut(s, "/")
	if err := bws.ValidateStorage(st); err != nil {
		return scope{}, err
	}
	if !found {
		return scope{storage: st, partition: -1}, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > bws.MaxPartition {
		return scope{}, fmt.Errorf("partition %q", p)
	}
	return scope{storage: st, partition: n}, nil
}

type rule struct {
	from, to scope
	offset   int64
}

// mapper applies the rules.
type mapper struct {
	rules  []rule
	strict bool
}

func newMapper(rules []MapRule, strict bool) (*mapper, error) {
	m := &mapper{strict: strict}
	for i, r := range rules {
		from, err := parseScope(r.From)
		if err != nil {
			return nil, fmt.Errorf("'sync.map[%d].from': %w", i, err)
		}
		to, err := parseScope(r.To)
		if err != nil {
			return nil, fmt.Errorf("'sync.map[%d].to': %w", i, err)
		}
		if r.ClassOffset < 0 {
			return nil, fmt.Errorf("'sync.map[%d].classOffset' must not be negative", i)
		}
		m.rules = append(m.rules, rule{from, to, r.ClassOffset})
	}
	return m, nil
}

// Map returns the central BCID of a local one.
func (m *mapper) Map(c bws.BCID) (bws.BCID, error) {
	for _, r := range m.rules {
		if r.from.storage != c.Storage || (r.from.partition >= 0 && r.from.partition != c.Partition) {
			continue
		}
		out := c
		out.Storage = r.to.storage
		if r.to.partition >= 0 {
			out.Partition = r.to.partition
		}
		out.ClassID += r.offset
		if err := out.Validate(); err != nil {
			return bws.BCID{}, fmt.Errorf("map %v: %w", c, err)
		}
		return out, nil
	}
	if m.strict {
		return bws.BCID{}, fmt.Errorf("no sync.map rule for %v", c)
	}
	return c, nil
}
