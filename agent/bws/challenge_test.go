package bws

import (
	"bytes"
	"errors"
	mrand "math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestNewChallengeDeterministic(t *testing.T) {
	// Byte k decides direction k: first r&3 (0 up, 1 down, 2 left, 3 right),
	// odd positions ignore it (return move), even ones pick r&1 on the
	// perpendicular axis (left/right or up/down).
	random := bytes.NewReader([]byte{
		2, 0, 1, // left, right, down
		0, 9, 1, 0, 0, // up, down, right, left, up
	})
	c, err := NewChallenge(random, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := Challenge{{Left, Right, Down}, {Up, Down, Right}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("NewChallenge = %v, want %v", c, want)
	}
	claim, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if claim != `[["left","right","down"],["up","down","right"]]` {
		t.Fatalf("Encode = %s", claim)
	}

	c, err = NewChallenge(bytes.NewReader([]byte{3, 0, 0, 0, 1, 0, 0}), 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Challenge{{Right, Left, Up, Down, Right, Left, Up}}); !reflect.DeepEqual(c, want) {
		t.Fatalf("NewChallenge = %v, want %v", c, want)
	}
}

func TestNewChallengePattern(t *testing.T) {
	rng := mrand.NewChaCha8([32]byte{1})
	firsts := map[Direction]int{}
	for i := 0; i < 200; i++ {
		n := MinChallengeLen + i%(MaxChallengeLen-MinChallengeLen+1)
		c, err := NewChallenge(rng, 1+i%MaxTries, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, seq := range c {
			if len(seq) != n {
				t.Fatalf("len = %d, want %d", len(seq), n)
			}
			firsts[seq[0]]++
			for k := 1; k < len(seq); k++ {
				switch {
				case k%2 == 1 && seq[k] != seq[k-1].Opposite():
					t.Fatalf("%v: position %d is not the return move", seq, k)
				case k%2 == 0 && seq[k].Vertical() == seq[k-1].Vertical():
					t.Fatalf("%v: position %d is not on the perpendicular axis", seq, k)
				}
			}
		}
	}
	for d := Up; d <= Right; d++ {
		if firsts[d] == 0 {
			t.Errorf("first direction %v never drawn: %v", d, firsts)
		}
	}
	// The default source is crypto/rand.
	if _, err := NewChallenge(nil, 3, 3); err != nil {
		t.Fatal(err)
	}
}

func TestNewChallengeErrors(t *testing.T) {
	tests := []struct {
		tries, n int
	}{{0, 3}, {16, 3}, {3, 1}, {3, 8}}
	for _, tt := range tests {
		if _, err := NewChallenge(nil, tt.tries, tt.n); !errors.Is(err, ErrInvalidChallenge) {
			t.Errorf("NewChallenge(%d, %d) = %v, want ErrInvalidChallenge", tt.tries, tt.n, err)
		}
	}
	// A short random source is an error, not a short challenge.
	if _, err := NewChallenge(bytes.NewReader([]byte{1, 2}), 1, 3); err == nil {
		t.Error("NewChallenge with a short source succeeded")
	}
}

func TestDecodeChallenge(t *testing.T) {
	tests := []struct {
		in   string
		want Challenge
		ok   bool
	}{
		{`[["left","right","down"],["up","down","left"]]`, Challenge{{Left, Right, Down}, {Up, Down, Left}}, true},
		{` [ ["UP" , "Down"] ] `, Challenge{{Up, Down}}, true},
		{``, nil, false},
		{`null`, nil, false},
		{`[]`, nil, false},
		{`[[]]`, nil, false},
		{`[null]`, nil, false},
		{`[["left"]]`, nil, false},
		{`[["left","right","up","down","left","right","up","down"]]`, nil, false},
		{`[["left","sideways"]]`, nil, false},
		{`[["left",null]]`, nil, false},
		{`[["left",1]]`, nil, false},
		{`["left","right"]`, nil, false},
		{`[["left","right"]]x`, nil, false},
		{`{"a":1}`, nil, false},
		{"[" + strings.Repeat(`["up","down"],`, 15) + `["up","down"]]`, nil, false}, // 16 tries
		{"[[\"" + strings.Repeat(" ", maxChallengeClaim) + "\"]]", nil, false},
	}
	for _, tt := range tests {
		got, err := DecodeChallenge(tt.in)
		if !tt.ok {
			if !errors.Is(err, ErrInvalidChallenge) {
				t.Errorf("DecodeChallenge(%.40q) = %v, %v; want ErrInvalidChallenge", tt.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeChallenge(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestChallengeImages(t *testing.T) {
	c := Challenge{{Left, Right, Down}, {Up, Down}}
	for try, want := range []int{4, 3, 0} {
		if got := c.Images(try); got != want {
			t.Errorf("Images(%d) = %d, want %d", try, got, want)
		}
	}
	if c.Images(-1) != 0 {
		t.Error("Images(-1)")
	}
}

func TestDirection(t *testing.T) {
	for d := Up; d <= Right; d++ {
		p, err := ParseDirection(d.String())
		if err != nil || p != d {
			t.Errorf("ParseDirection(%q) = %v, %v", d.String(), p, err)
		}
		if d.Opposite().Opposite() != d || d.Opposite() == d {
			t.Errorf("%v.Opposite() = %v", d, d.Opposite())
		}
	}
	for _, s := range []string{"", "any", "upp", "forward"} {
		if _, err := ParseDirection(s); !errors.Is(err, ErrInvalidChallenge) {
			t.Errorf("ParseDirection(%q) = %v", s, err)
		}
	}
	if Direction(0).Opposite() != 0 || Direction(9).String() != "Direction(9)" {
		t.Error("invalid direction handling")
	}
	if _, err := (Challenge{{Up, 0}}).Encode(); !errors.Is(err, ErrInvalidChallenge) {
		t.Errorf("Encode of an invalid challenge: %v", err)
	}
}

func FuzzDecodeChallenge(f *testing.F) {
	for _, s := range []string{
		`[["left","right","down"],["up","down","left"]]`,
		`[["up","down"]]`, `[]`, `[[]]`, `null`, `[null]`, `[["left",null]]`, `[["left",1]]`,
		`[["LEFT","Right"]]`, `"[[\"left\"]]"`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeChallenge(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidChallenge) {
				t.Fatalf("error %v is not ErrInvalidChallenge", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded %v does not validate: %v", c, err)
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode(%v): %v", c, err)
		}
		back, err := DecodeChallenge(enc)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip %q -> %v, %v", enc, back, err)
		}
	})
}
