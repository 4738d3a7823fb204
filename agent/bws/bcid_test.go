package bws

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseBCID(t *testing.T) {
	tests := []struct {
		in   string
		want BCID
		ok   bool
	}{
		{"bws.12.4711", BCID{"bws", 12, 4711}, true},
		{"bws/12/4711", BCID{"bws", 12, 4711}, true},
		{"A_b9.0.0", BCID{"A_b9", 0, 0}, true},
		{"_/1/2", BCID{"_", 1, 2}, true},
		{"bws.012.004711", BCID{"bws", 12, 4711}, true},
		{"s.2147483647.9223372036854775807", BCID{"s", MaxPartition, MaxClassID}, true},
		{strings.Repeat("s", MaxStorageLen) + ".1.2", BCID{strings.Repeat("s", MaxStorageLen), 1, 2}, true},

		{"", BCID{}, false},
		{"bws", BCID{}, false},
		{"bws.12", BCID{}, false},
		{"bws.12.4711.1", BCID{}, false},
		{"bws/12/4711/", BCID{}, false},
		{"bws.12/4711", BCID{}, false},
		{"bws/12.4711", BCID{}, false},
		{".12.4711", BCID{}, false},
		{"bws..4711", BCID{}, false},
		{"bws.12.", BCID{}, false},
		{"b-s.1.2", BCID{}, false},
		{"b s.1.2", BCID{}, false},
		{"bäs.1.2", BCID{}, false},
		{"bws.-1.2", BCID{}, false},
		{"bws.+1.2", BCID{}, false},
		{"bws.1.-2", BCID{}, false},
		{"bws.1.2 ", BCID{}, false},
		{" bws.1.2", BCID{}, false},
		{"bws.1.0x10", BCID{}, false},
		{"bws.1.1e3", BCID{}, false},
		{"bws.1.2.5", BCID{}, false},
		{"bws.2147483648.1", BCID{}, false},
		{"bws.1.9223372036854775808", BCID{}, false},
		{"bws.1.99999999999999999999", BCID{}, false},
		{strings.Repeat("s", MaxStorageLen+1) + ".1.2", BCID{}, false},
		{"bws.1." + strings.Repeat("0", 200) + "1", BCID{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBCID(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseBCID(%q) = %v, want error", tt.in, got)
				}
				if !errors.Is(err, ErrInvalidBCID) {
					t.Fatalf("error %v does not match ErrInvalidBCID", err)
				}
				var be *BCIDError
				if !errors.As(err, &be) || be.Reason == "" {
					t.Fatalf("error %v is not a *BCIDError with a reason", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBCID(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseBCID(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestBCIDString(t *testing.T) {
	b := BCID{"bws", 12, 4711}
	if got := b.String(); got != "bws/12/4711" {
		t.Fatalf("String() = %q", got)
	}
	j, err := json.Marshal(struct{ BCID BCID }{b})
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != `{"BCID":"bws/12/4711"}` {
		t.Fatalf("JSON = %s", j)
	}
	var back struct{ BCID BCID }
	if err := json.Unmarshal([]byte(`{"BCID":"bws.12.4711"}`), &back); err != nil || back.BCID != b {
		t.Fatalf("Unmarshal = %+v, %v", back.BCID, err)
	}
	if err := json.Unmarshal([]byte(`{"BCID":"bws.x.4711"}`), &back); !errors.Is(err, ErrInvalidBCID) {
		t.Fatalf("Unmarshal of a bad BCID: %v", err)
	}
}

func TestBCIDValidate(t *testing.T) {
	tests := []struct {
		b  BCID
		ok bool
	}{
		{BCID{"bws", 0, 0}, true},
		{BCID{"", 1, 1}, false},
		{BCID{"bws", -1, 1}, false},
		{BCID{"bws", 1, -1}, false},
		{BCID{"b.s", 1, 1}, false},
	}
	for _, tt := range tests {
		err := tt.b.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tt.b, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidBCID) {
			t.Errorf("%+v.Validate() = %v, not ErrInvalidBCID", tt.b, err)
		}
		if _, err := tt.b.MarshalText(); (err == nil) != tt.ok {
			t.Errorf("%+v.MarshalText() = %v, want ok=%v", tt.b, err, tt.ok)
		}
	}
	if !(BCID{}).IsZero() || (BCID{Storage: "x"}).IsZero() {
		t.Error("IsZero")
	}
}

func FuzzParseBCID(f *testing.F) {
	for _, s := range []string{
		"bws.12.4711", "bws/12/4711", "bws.12/4711", "", "...", "///", "a.0.0",
		"s.2147483647.9223372036854775807", "s.2147483648.1", "bws.-1.2", "bws.+1.2",
		"bäs.1.2", "bws.1.0x10",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBCID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidBCID) {
				t.Fatalf("error %v is not ErrInvalidBCID", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error message unbounded: %d bytes", len(err.Error()))
			}
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("parsed %q to %+v that does not validate: %v", s, b, err)
		}
		again, err := ParseBCID(b.String())
		if err != nil || again != b {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, b.String(), again, err)
		}
		dotted := strings.ReplaceAll(b.String(), "/", ".")
		if again, err := ParseBCID(dotted); err != nil || again != b {
			t.Fatalf("dotted %q -> %+v, %v", dotted, again, err)
		}
	})
}
