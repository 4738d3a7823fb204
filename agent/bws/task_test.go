package bws

import (
	"errors"
	"testing"
)

func TestTaskContractExamples(t *testing.T) {
	tests := []struct {
		task     Task
		op       Operation
		tries    int
		live, cr bool
	}{
		{259, OpVerify, 3, true, false},
		{291, OpEnroll, 3, true, false},
		{0x13, OpIdentify, 3, false, false},
		{0x183, OpLivenessDetection, 3, true, false},
		{0x305, OpVerify, 5, true, true},
		{0x1101, OpVerify, 1, true, false},
	}
	for _, tt := range tests {
		if err := tt.task.Validate(); err != nil {
			t.Errorf("%d.Validate(): %v", tt.task, err)
		}
		if got := tt.task.Operation(); got != tt.op {
			t.Errorf("%d.Operation() = %v, want %v", tt.task, got, tt.op)
		}
		if got := tt.task.MaxTries(); got != tt.tries {
			t.Errorf("%d.MaxTries() = %d, want %d", tt.task, got, tt.tries)
		}
		if got := tt.task.LiveDetection(); got != tt.live {
			t.Errorf("%d.LiveDetection() = %v", tt.task, got)
		}
		if got := tt.task.ChallengeResponse(); got != tt.cr {
			t.Errorf("%d.ChallengeResponse() = %v", tt.task, got)
		}
	}
	if !Task(0x1101).AutoEnroll() || Task(259).AutoEnroll() {
		t.Error("AutoEnroll")
	}
}

func TestNewTask(t *testing.T) {
	tests := []struct {
		op    Operation
		tries int
		flags Task
		want  Task
		ok    bool
	}{
		{OpVerify, 3, TaskLiveDetection, 259, true},
		{OpEnroll, 3, TaskLiveDetection, 291, true},
		{OpIdentify, 1, 0, 0x11, true},
		{OpLivenessDetection, 3, 0, 0x183, true},
		{OpLivenessDetection, 2, TaskChallengeResponse, 0x382, true},
		{OpVerify, 15, TaskLiveDetection | TaskChallengeResponse | TaskAutoEnroll, 0x130F, true},

		{OpVerify, 0, 0, 0, false},
		{OpVerify, 16, 0, 0, false},
		{OpVerify, 3, TaskChallengeResponse, 0, false},
		{OpEnroll, 3, TaskAutoEnroll, 0, false},
		{OpIdentify, 3, TaskEnroll, 0, false},
		{OpVerify, 3, 0x40, 0, false},
		{Operation(9), 3, 0, 0, false},
	}
	for _, tt := range tests {
		got, err := NewTask(tt.op, tt.tries, tt.flags)
		if !tt.ok {
			if !errors.Is(err, ErrInvalidTask) {
				t.Errorf("NewTask(%v, %d, %#x) = %d, %v; want ErrInvalidTask", tt.op, tt.tries, int(tt.flags), got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NewTask(%v, %d, %#x) = %#x, %v; want %#x", tt.op, tt.tries, int(tt.flags), int(got), err, int(tt.want))
		}
	}
}

func TestTaskValidate(t *testing.T) {
	bad := []Task{
		0,                                    // no tries
		0x30 | 3,                             // identify + enroll
		0xA0 | 3,                             // enroll + live only
		0x40 | 3,                             // unknown bit
		0x8000 | 3,                           // unknown bit
		-1,                                   // negative
		TaskChallengeResponse | 3,            // challenge without liveness
		TaskIdentify | TaskAutoEnroll | 3,    // auto-enroll on identify
		TaskLiveOnly | TaskAutoEnroll | 0x13, // several faults
	}
	for _, task := range bad {
		if err := task.Validate(); !errors.Is(err, ErrInvalidTask) {
			t.Errorf("Task(%#x).Validate() = %v, want ErrInvalidTask", int(task), err)
		}
	}
}

func TestParseOperation(t *testing.T) {
	tests := []struct {
		in     string
		want   Operation
		action string
		ok     bool
	}{
		{"", OpVerify, "verification", true},
		{"verify", OpVerify, "verification", true},
		{"Identify", OpIdentify, "identification", true},
		{"ENROLL", OpEnroll, "enrollment", true},
		{"livenessdetection", OpLivenessDetection, "livenessdetection", true},
		{"livedetection", 0, "", false},
		{"delete", 0, "", false},
	}
	for _, tt := range tests {
		got, err := ParseOperation(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseOperation(%q) = %v, %v", tt.in, got, err)
			continue
		}
		if !tt.ok {
			if !errors.Is(err, ErrInvalidTask) {
				t.Errorf("ParseOperation(%q) error %v is not ErrInvalidTask", tt.in, err)
			}
			continue
		}
		if got.Action() != tt.action {
			t.Errorf("%v.Action() = %q, want %q", got, got.Action(), tt.action)
		}
	}
	if s := Operation(7).String(); s != "Operation(7)" {
		t.Errorf("String of unknown = %q", s)
	}
}

func TestTaskString(t *testing.T) {
	if got := Task(0x1303).String(); got != "verify+live+challenge+autoenroll/3" {
		t.Errorf("String() = %q", got)
	}
	if got := Task(291).String(); got != "enroll+live/3" {
		t.Errorf("String() = %q", got)
	}
}

func TestParseTraits(t *testing.T) {
	tests := []struct {
		in   string
		want Traits
		ok   bool
	}{
		{"Face", TraitFace, true},
		{"Periocular", TraitPeriocular, true},
		{"Face,Periocular", TraitFace | TraitPeriocular, true},
		{"periocular, face", TraitFace | TraitPeriocular, true},
		{"Voice", TraitVoice, true},
		{"Face,Face", TraitFace, true},
		{"", 0, false},
		{"Face,", 0, false},
		{",Face", 0, false},
		{"Iris", 0, false},
		{"Face;Periocular", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseTraits(tt.in)
		if !tt.ok {
			if !errors.Is(err, ErrInvalidTraits) {
				t.Errorf("ParseTraits(%q) = %v, %v; want ErrInvalidTraits", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTraits(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%v.Validate(): %v", got, err)
		}
	}
	if s := (TraitFace | TraitPeriocular).String(); s != "Face,Periocular" {
		t.Errorf("String() = %q", s)
	}
	for _, bad := range []Traits{0, 8, -1} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidTraits) {
			t.Errorf("Traits(%d).Validate() = %v", bad, err)
		}
	}
	if !(TraitFace | TraitPeriocular).Has(TraitFace) || TraitFace.Has(TraitPeriocular) {
		t.Error("Has")
	}
}
