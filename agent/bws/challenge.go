package bws

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Direction is a head movement asked for in a challenge, and the tag of an
// uploaded sample. Directions are in the sample's own pixel coordinates (see
// the contract): Left means the face moves toward the image's left edge.
type Direction uint8

// Directions. The zero value is invalid so a missing value is noticed.
const (
	Up Direction = iota + 1
	Down
	Left
	Right
)

// ErrInvalidChallenge is matched by every challenge and direction error.
var ErrInvalidChallenge = errors.New("invalid challenge")

// ParseDirection parses "up", "down", "left" or "right" (case-insensitive).
func ParseDirection(s string) (Direction, error) {
	for d := Up; d <= Right; d++ {
		if strings.EqualFold(s, d.String()) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("bws: unknown direction %q: %w", shorten(s, 20), ErrInvalidChallenge)
}

// String returns the lower-case name used in tokens and upload tags.
func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	case Left:
		return "left"
	case Right:
		return "right"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Opposite returns the return move: Left for Right, Up for Down.
func (d Direction) Opposite() Direction {
	switch d {
	case Up:
		return Down
	case Down:
		return Up
	case Left:
		return Right
	case Right:
		return Left
	}
	return 0
}

// Vertical reports whether d is Up or Down.
func (d Direction) Vertical() bool { return d == Up || d == Down }

// MarshalText makes a Direction a JSON string.
func (d Direction) MarshalText() ([]byte, error) {
	if d < Up || d > Right {
		return nil, fmt.Errorf("bws: direction %d: %w", uint8(d), ErrInvalidChallenge)
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses a direction name.
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Bounds of a challenge: directions per try (the /token "challenges"
// parameter) and tries (one array per try, up to MaxTries).
const (
	MinChallengeLen     = 2
	MaxChallengeLen     = 7
	DefaultChallengeLen = 3

	// maxChallengeClaim bounds the claim text before JSON decoding: 15 tries
	// of 7 `"right",` plus brackets and generous whitespace.
	maxChallengeClaim = 4096
)

// Challenge holds the directions a challenge-response token asks for, one
// array per try: Challenge[try][k].
type Challenge [][]Direction

// NewChallenge generates a challenge for tries tries with n directions each,
// as BWS does: the first direction is random, the next is its opposite (the
// return move), the next is random on the perpendicular axis, then its
// opposite, and so on: [left right down], [up down right up down].
// random is the randomness source (crypto/rand when nil); one byte is read
// per direction, so a fixed reader gives a fixed challenge in tests.
func NewChallenge(random io.Reader, tries, n int) (Challenge, error) {
	if tries < MinTries || tries > MaxTries {
		return nil, fmt.Errorf("bws: challenge tries %d not in %d..%d: %w", tries, MinTries, MaxTries, ErrInvalidChallenge)
	}
	if n < MinChallengeLen || n > MaxChallengeLen {
		return nil, fmt.Errorf("bws: challenge length %d not in %d..%d: %w", n, MinChallengeLen, MaxChallengeLen, ErrInvalidChallenge)
	}
	if random == nil {
		random = rand.Reader
	}
	buf := make([]byte, tries*n)
	if _, err := io.ReadFull(random, buf); err != nil {
		return nil, fmt.Errorf("bws: challenge randomness: %w", err)
	}
	c := make(Challenge, tries)
	for t := range c {
		seq := make([]Direction, n)
		for k := range seq {
			r := buf[t*n+k]
			switch {
			case k == 0:
				seq[k] = Direction(r&3) + Up // any of the four, unbiased
			case k%2 == 1:
				seq[k] = seq[k-1].Opposite()
			default:
				seq[k] = perpendicular(seq[k-1], r&1)
			}
		}
		c[t] = seq
	}
	return c, nil
}

// perpendicular picks one of the two directions on the other axis.
func perpendicular(d Direction, bit byte) Direction {
	if d.Vertical() {
		return [2]Direction{Left, Right}[bit]
	}
	return [2]Direction{Up, Down}[bit]
}

// Validate checks the shape: 1..MaxTries tries, each with
// MinChallengeLen..MaxChallengeLen known directions.
func (c Challenge) Validate() error {
	if len(c) < MinTries || len(c) > MaxTries {
		return fmt.Errorf("bws: challenge has %d tries: %w", len(c), ErrInvalidChallenge)
	}
	for i, seq := range c {
		if len(seq) < MinChallengeLen || len(seq) > MaxChallengeLen {
			return fmt.Errorf("bws: challenge try %d has %d directions: %w", i, len(seq), ErrInvalidChallenge)
		}
		for _, d := range seq {
			if d < Up || d > Right {
				return fmt.Errorf("bws: challenge try %d: direction %d: %w", i, uint8(d), ErrInvalidChallenge)
			}
		}
	}
	return nil
}

// Encode returns the token claim: a string holding JSON, such as
// `[["left","right","down"],["up","down","left"]]`.
func (c Challenge) Encode() (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("bws: encode challenge: %w", err)
	}
	return string(b), nil
}

// DecodeChallenge parses the "challenge" claim produced by Encode and
// validates its shape. Anything else (other JSON, unknown directions, empty
// tries) is an ErrInvalidChallenge.
func DecodeChallenge(s string) (Challenge, error) {
	if len(s) > maxChallengeClaim {
		return nil, fmt.Errorf("bws: challenge claim too long: %w", ErrInvalidChallenge)
	}
	var c Challenge
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, fmt.Errorf("bws: decode challenge: %w: %w", ErrInvalidChallenge, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Images returns how many samples a try needs: one untagged ("any") image
// plus one per direction.
func (c Challenge) Images(try int) int {
	if try < 0 || try >= len(c) {
		return 0
	}
	return len(c[try]) + 1
}
