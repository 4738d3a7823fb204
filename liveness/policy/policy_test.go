package policy

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if ps := Default().Check(); len(ps) != 0 {
		t.Fatalf("Default has problems: %+v", ps)
	}
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Thresholds)
		want   []string // keys of the problems, in order
	}{
		{"defaults", func(*Thresholds) {}, nil},
		{"PAD above 1", func(c *Thresholds) { c.MinPAD = 1.5 }, []string{"minPad"}},
		{"NaN fails", func(c *Thresholds) { c.MaxMoire = math.NaN() }, []string{"maxMoire"}},
		{"infinity fails", func(c *Thresholds) { c.MaxShift = math.Inf(1) }, []string{"maxShift"}},
		{"bounds are inclusive", func(c *Thresholds) { c.MaxFramed, c.MinSimilarity = 1, -1 }, nil},
		{"just outside", func(c *Thresholds) { c.MaxFramed = math.Nextafter(1, 2) }, []string{"maxFramed"}},
		{"two at once", func(c *Thresholds) { c.MinFaceSize, c.MaxYaw = -1, 0 }, []string{"minFaceSize", "maxYaw"}},
		{"challenge larger than a step", func(c *Thresholds) { c.MinChallengeDeg, c.MaxStepDeg = 30, 20 }, []string{"minChallengeDeg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			var got []string
			for _, p := range c.Check() {
				got = append(got, p.Key)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems %v, want %v", got, tt.want)
			}
			if err := c.Validate(); (err != nil) != (len(tt.want) > 0) {
				t.Errorf("Validate() = %v, want an error: %v", err, len(tt.want) > 0)
			}
		})
	}
}

// Every field has a range, and a problem carries the Go name and the YAML
// key its struct tags declare; the JSON name is the same words.
func TestEveryFieldChecked(t *testing.T) {
	typ := reflect.TypeFor[Thresholds]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		c := Default()
		reflect.ValueOf(&c).Elem().Field(i).SetFloat(math.NaN())
		ps := c.Check()
		if len(ps) != 1 {
			t.Errorf("%s = NaN: %d problems, want 1", f.Name, len(ps))
			continue
		}
		if ps[0].Field != f.Name || ps[0].Key != f.Tag.Get("yaml") {
			t.Errorf("%s: problem names %q/%q, tags say %q", f.Name, ps[0].Field, ps[0].Key, f.Tag.Get("yaml"))
		}
		if j := f.Tag.Get("json"); j == "" || strings.ReplaceAll(j, "_", "") != strings.ToLower(f.Tag.Get("yaml")) {
			t.Errorf("%s: json tag %q does not match yaml tag %q", f.Name, j, f.Tag.Get("yaml"))
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "'"+f.Name+"'") {
			t.Errorf("%s = NaN: Validate() = %v, want it named", f.Name, err)
		}
	}
}
