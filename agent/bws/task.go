package bws

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Task is the integer "task" claim of a BWS token: the low nibble holds the
// maximum number of tries, the other bits select the operation and options.
// Example: 259 (0x103) = verify with liveness detection, 3 tries.
type Task int

// Task bits, exactly as BWS defines them.
const (
	TaskMaxTriesMask      Task = 0x0F
	TaskVerify            Task = 0x00
	TaskIdentify          Task = 0x10
	TaskEnroll            Task = 0x20
	TaskLiveOnly          Task = 0x80 // task "livenessdetection"
	TaskLiveDetection     Task = 0x100
	TaskChallengeResponse Task = 0x200
	TaskAutoEnroll        Task = 0x1000

	taskOpMask = TaskIdentify | TaskEnroll | TaskLiveOnly
	taskKnown  = TaskMaxTriesMask | taskOpMask | TaskLiveDetection | TaskChallengeResponse | TaskAutoEnroll
)

// Tries bounds, from the /token "maxtries" parameter (1–15, default 3).
const (
	MinTries     = 1
	MaxTries     = 15
	DefaultTries = 3
)

// ErrInvalidTask is matched by every task error (an unknown task name, an
// impossible flag combination, tries out of range).
var ErrInvalidTask = errors.New("invalid task")

// Operation is the biometric operation a token grants.
type Operation int

// Operations. The zero value is OpVerify, as "verify" is /token's default.
const (
	OpVerify Operation = iota
	OpIdentify
	OpEnroll
	OpLivenessDetection
)

// ParseOperation parses the /token "task" parameter (case-insensitive);
// empty means verify.
func ParseOperation(s string) (Operation, error) {
	if s == "" {
		return OpVerify, nil
	}
	for o := OpVerify; o <= OpLivenessDetection; o++ {
		if strings.EqualFold(s, o.String()) {
			return o, nil
		}
	}
	return 0, fmt.Errorf("bws: unknown task %q: %w", shorten(s, 40), ErrInvalidTask)
}

// String returns the operation's name in the /token "task" parameter.
func (o Operation) String() string {
	switch o {
	case OpVerify:
		return "verify"
	case OpIdentify:
		return "identify"
	case OpEnroll:
		return "enroll"
	case OpLivenessDetection:
		return "livenessdetection"
	}
	return "Operation(" + strconv.Itoa(int(o)) + ")"
}

// Action returns the word /result uses for the operation ("enrollment", …).
func (o Operation) Action() string {
	switch o {
	case OpVerify:
		return "verification"
	case OpIdentify:
		return "identification"
	case OpEnroll:
		return "enrollment"
	case OpLivenessDetection:
		return "livenessdetection"
	}
	return ""
}

func (o Operation) bit() Task {
	switch o {
	case OpIdentify:
		return TaskIdentify
	case OpEnroll:
		return TaskEnroll
	case OpLivenessDetection:
		return TaskLiveOnly
	}
	return TaskVerify
}

// NewTask builds the task claim for op with maxTries tries and the option
// bits in flags (TaskLiveDetection, TaskChallengeResponse, TaskAutoEnroll),
// and validates the combination. A livenessdetection task always carries
// TaskLiveDetection.
func NewTask(op Operation, maxTries int, flags Task) (Task, error) {
	if op < OpVerify || op > OpLivenessDetection {
		return 0, fmt.Errorf("bws: unknown operation %d: %w", int(op), ErrInvalidTask)
	}
	if maxTries < MinTries || maxTries > MaxTries {
		return 0, fmt.Errorf("bws: maxtries %d not in %d..%d: %w", maxTries, MinTries, MaxTries, ErrInvalidTask)
	}
	if flags&^(TaskLiveDetection|TaskChallengeResponse|TaskAutoEnroll) != 0 {
		return 0, fmt.Errorf("bws: flags %#x are not option bits: %w", int(flags), ErrInvalidTask)
	}
	t := op.bit() | Task(maxTries) | flags
	if op == OpLivenessDetection {
		t |= TaskLiveDetection
	}
	return t, t.Validate()
}

// Validate reports whether t is a task this agent can honour: known bits
// only, 1..15 tries, at most one operation bit, challenge-response only with
// liveness detection, auto-enroll only with verify.
func (t Task) Validate() error {
	bad := func(reason string) error {
		return fmt.Errorf("bws: task %d: %s: %w", int(t), reason, ErrInvalidTask)
	}
	switch {
	case t < 0 || t&^taskKnown != 0:
		return bad("unknown bits")
	case t.MaxTries() < MinTries:
		return bad("no tries")
	}
	switch t & taskOpMask {
	case TaskVerify, TaskIdentify, TaskEnroll, TaskLiveOnly:
	default:
		return bad("more than one operation")
	}
	if t.Has(TaskChallengeResponse) && !t.LiveDetection() {
		return bad("challenge-response needs liveness detection")
	}
	if t.Has(TaskAutoEnroll) && t.Operation() != OpVerify {
		return bad("auto-enroll is for verify only")
	}
	return nil
}

// Operation returns the operation t grants. For an invalid t (several
// operation bits) the result is meaningless; call Validate first.
func (t Task) Operation() Operation {
	switch {
	case t&TaskLiveOnly != 0:
		return OpLivenessDetection
	case t&TaskEnroll != 0:
		return OpEnroll
	case t&TaskIdentify != 0:
		return OpIdentify
	}
	return OpVerify
}

// Has reports whether all bits of flag are set.
func (t Task) Has(flag Task) bool { return t&flag == flag }

// MaxTries returns the number of biometric calls the token allows.
func (t Task) MaxTries() int { return int(t & TaskMaxTriesMask) }

// LiveDetection reports whether the token requires liveness detection
// (a livenessdetection task always does).
func (t Task) LiveDetection() bool { return t&(TaskLiveDetection|TaskLiveOnly) != 0 }

// ChallengeResponse reports whether the token carries a challenge.
func (t Task) ChallengeResponse() bool { return t.Has(TaskChallengeResponse) }

// AutoEnroll reports whether a successful verify also enrolls the samples.
func (t Task) AutoEnroll() bool { return t.Has(TaskAutoEnroll) }

// String describes t for logs: "enroll+live/3".
func (t Task) String() string {
	var b strings.Builder
	b.WriteString(t.Operation().String())
	if t.Has(TaskLiveDetection) {
		b.WriteString("+live")
	}
	if t.Has(TaskChallengeResponse) {
		b.WriteString("+challenge")
	}
	if t.Has(TaskAutoEnroll) {
		b.WriteString("+autoenroll")
	}
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(t.MaxTries()))
	return b.String()
}

// Traits is the "traits" claim: the biometric traits a token covers.
type Traits int

// Trait bits, as BWS defines them.
const (
	TraitFace       Traits = 1
	TraitPeriocular Traits = 2
	TraitVoice      Traits = 4

	traitsKnown = TraitFace | TraitPeriocular | TraitVoice
)

// ErrInvalidTraits is matched by every traits error.
var ErrInvalidTraits = errors.New("invalid traits")

// traitName returns the contract's name of a single trait bit.
func traitName(t Traits) string {
	switch t {
	case TraitFace:
		return "Face"
	case TraitPeriocular:
		return "Periocular"
	case TraitVoice:
		return "Voice"
	}
	return ""
}

// ParseTraits parses a comma-separated trait list such as "Face",
// "Periocular" or "Face,Periocular" (names case-insensitive, spaces around
// names ignored). An empty string or an empty element is an error: callers
// apply their default when the parameter is absent.
func ParseTraits(s string) (Traits, error) {
	if s == "" {
		return 0, fmt.Errorf("bws: empty traits: %w", ErrInvalidTraits)
	}
	if len(s) > 64 {
		return 0, fmt.Errorf("bws: traits too long: %w", ErrInvalidTraits)
	}
	var t Traits
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		var found bool
		for bit := TraitFace; bit <= TraitVoice; bit <<= 1 {
			if strings.EqualFold(f, traitName(bit)) {
				t |= bit
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("bws: unknown trait %q: %w", shorten(f, 40), ErrInvalidTraits)
		}
	}
	return t, nil
}

// Validate reports whether t is a non-empty set of known traits.
func (t Traits) Validate() error {
	if t <= 0 || t&^traitsKnown != 0 {
		return fmt.Errorf("bws: traits %d: %w", int(t), ErrInvalidTraits)
	}
	return nil
}

// Has reports whether all traits of u are in t.
func (t Traits) Has(u Traits) bool { return t&u == u }

// String returns the list form, "Face,Periocular".
func (t Traits) String() string {
	var names []string
	for bit := TraitFace; bit <= TraitVoice; bit <<= 1 {
		if t&bit != 0 {
			names = append(names, traitName(bit))
		}
	}
	if rest := t &^ traitsKnown; rest != 0 {
		names = append(names, "Traits("+strconv.Itoa(int(rest))+")")
	}
	return strings.Join(names, ",")
}
