package backoff

import (
	"strings"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{0, 0.5, 100 * time.Millisecond},
		{1, 0.5, 200 * time.Millisecond},
		{3, 0.5, 800 * time.Millisecond},
		{4, 0.5, time.Second}, // capped
		{100, 0.5, time.Second},
		{0, 0, 80 * time.Millisecond},  // −20 %
		{0, 1, 120 * time.Millisecond}, // +20 %
		{10, 0.999, time.Second},       // jitter never exceeds the cap
	}
	for _, tt := range tests {
		if got := p.Delay(tt.attempt, tt.r); got.Round(time.Millisecond) != tt.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Policy{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2}
	tests := []struct {
		name string
		mod  func(*Policy)
		want string
	}{
		{"valid", func(*Policy) {}, ""},
		{"zero initial", func(p *Policy) { p.Initial = 0 }, "'x.initial'"},
		{"max below initial", func(p *Policy) { p.Max = time.Millisecond }, "'x.max'"},
		{"shrinking", func(p *Policy) { p.Multiplier = 0.5 }, "'x.multiplier'"},
		{"jitter over 1", func(p *Policy) { p.Jitter = 2 }, "'x.jitter'"},
	}
	for _, tt := range tests {
		p := ok
		tt.mod(&p)
		err := p.Validate("x")
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
	}
}
