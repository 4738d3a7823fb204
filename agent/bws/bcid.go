package bws

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bounds of a BCID. BWS does not publish them; ours keep keys short and the
// numbers inside the integer types the store and the JSON answers use.
const (
	// MaxStorageLen is the longest storage name accepted.
	MaxStorageLen = 64
	// MaxPartition is the largest partition number (int32 range, as BWS's own).
	MaxPartition = math.MaxInt32
	// MaxClassID is the largest class id (int64 range).
	MaxClassID = math.MaxInt64
)

// ErrInvalidBCID is matched (errors.Is) by every BCID parse or validation
// error. Handlers answer it with 400.
var ErrInvalidBCID = errors.New("invalid BCID")

// BCIDError says why a BCID was rejected.
type BCIDError struct {
	Input  string // the rejected text, shortened
	Reason string
}

func (e *BCIDError) Error() string {
	if e.Input == "" {
		return "bws: invalid BCID: " + e.Reason
	}
	return fmt.Sprintf("bws: invalid BCID %q: %s", e.Input, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidBCID) hold.
func (e *BCIDError) Unwrap() error { return ErrInvalidBCID }

// BCID is a Biometric Class ID: one class (one person) in one partition of
// one storage.
type BCID struct {
	Storage   string
	Partition int
	ClassID   int64
}

// ParseBCID parses "storage.partition.classid" or "storage/partition/classid"
// (one separator throughout). storage is 1..MaxStorageLen word characters
// [A-Za-z0-9_]; partition and classid are non-negative decimal integers
// without sign, within MaxPartition and MaxClassID.
func ParseBCID(s string) (BCID, error) {
	fail := func(reason string) (BCID, error) {
		return BCID{}, &BCIDError{Input: shorten(s, 80), Reason: reason}
	}
	if s == "" {
		return fail("empty")
	}
	// The longest valid form: storage, two separators, 10 + 19 digits.
	if len(s) > MaxStorageLen+2+10+19 {
		return fail("too long")
	}
	sep := "/"
	if i := strings.IndexAny(s, "./"); i >= 0 {
		sep = s[i : i+1]
	}
	parts := strings.Split(s, sep)
	if len(parts) != 3 {
		return fail("want storage" + sep + "partition" + sep + "classid")
	}
	b := BCID{Storage: parts[0]}
	if err := validateStorage(b.Storage); err != nil {
		return fail(err.Error())
	}
	p, err := parseUint(parts[1], MaxPartition)
	if err != nil {
		return fail("partition " + err.Error())
	}
	c, err := parseUint(parts[2], MaxClassID)
	if err != nil {
		return fail("classid " + err.Error())
	}
	b.Partition, b.ClassID = int(p), int64(c)
	return b, nil
}

// String returns the slash form used in tokens and answers: "bws/12/4711".
func (b BCID) String() string {
	return b.Storage + "/" + strconv.Itoa(b.Partition) + "/" + strconv.FormatInt(b.ClassID, 10)
}

// IsZero reports whether b is the zero BCID (no class given).
func (b BCID) IsZero() bool { return b == BCID{} }

// Validate checks a BCID built in code against the same rules as ParseBCID.
func (b BCID) Validate() error {
	if err := validateStorage(b.Storage); err != nil {
		return &BCIDError{Reason: err.Error()}
	}
	if b.Partition < 0 || int64(b.Partition) > MaxPartition {
		return &BCIDError{Reason: "partition out of range"}
	}
	if b.ClassID < 0 {
		return &BCIDError{Reason: "classid out of range"}
	}
	return nil
}

// MarshalText encodes b in the slash form, so JSON carries "bws/12/4711".
func (b BCID) MarshalText() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// UnmarshalText parses either form.
func (b *BCID) UnmarshalText(text []byte) error {
	v, err := ParseBCID(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ValidateStorage checks a storage name on its own (apps are configured with
// one).
func ValidateStorage(s string) error {
	if err := validateStorage(s); err != nil {
		return &BCIDError{Input: shorten(s, 80), Reason: err.Error()}
	}
	return nil
}

func validateStorage(s string) error {
	if s == "" {
		return errors.New("empty storage")
	}
	if len(s) > MaxStorageLen {
		return errors.New("storage too long")
	}
	for i := 0; i < len(s); i++ {
		if !isWordChar(s[i]) {
			return errors.New("storage must be word characters")
		}
	}
	return nil
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// parseUint accepts only ASCII digits (strconv would also take "+1" or "0x1"
// with base 0; we pass base 10 but still reject signs and empties up front).
func parseUint(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	if len(s) > 19 {
		return 0, errors.New("out of range")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("must be a non-negative integer")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// shorten keeps error messages bounded when they quote client input.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
