// Package admin is the agent's administration: apps, classes, backups and
// key rotation, behind one interface with two implementations.
//
// bbolt locks the store file while the agent runs, so administration goes
// through the running agent: it serves Local on a unix socket in its data
// directory (mode 0600, peers checked to be the agent's own user or root)
// and the CLI talks to it with Client. When no agent runs, the CLI opens the
// store itself and uses Local directly. Connect picks the right one, so
// every command runs the same code either way.
//
// The socket speaks HTTP/1.1 with small JSON bodies (and a byte stream for
// backups): simple to debug with `curl --unix-socket`.
package admin

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/bwsagent/bwsagent/agent/bws"
)

// Service is every administrative operation.
type Service interface {
	// Status describes the agent (Running false when the CLI opened the
	// store itself).
	Status(ctx context.Context) (Status, error)

	// AddApp creates an app and returns it with its secret, which is not
	// stored and cannot be shown again.
	AddApp(ctx context.Context, app NewApp) (App, string, error)
	Apps(ctx context.Context) ([]App, error)
	RemoveApp(ctx context.Context, id string) error
	// RotateAppSecret gives the app a new secret; the old one stops working
	// at once.
	RotateAppSecret(ctx context.Context, id string) (string, error)

	// Classes lists the classes of a storage partition (partition < 0:
	// every partition; storage "": everything).
	Classes(ctx context.Context, storage string, partition int) ([]Class, error)
	// Class describes one class and its templates (never the vectors).
	Class(ctx context.Context, c bws.BCID) (ClassDetail, error)
	// DeleteClass removes a class and all its templates.
	DeleteClass(ctx context.Context, c bws.BCID) error

	// Backup writes an encrypted, consistent snapshot of the store (see
	// WriteBackup) and returns the snapshot's size.
	Backup(ctx context.Context, w io.Writer) (int64, error)

	// RotateSigningKey makes a new token-signing key current. Tokens signed
	// with the old key stay valid until they expire.
	RotateSigningKey(ctx context.Context) (KeyInfo, error)
	// RotateTemplateKey makes a new template key current, reseals every
	// template and signing key with it and returns how many records it
	// resealed.
	RotateTemplateKey(ctx context.Context) (int, error)

	// OutboxList prints the sync outbox's pending jobs, or its dead
	// letters (outbox.List); never samples.
	OutboxList(ctx context.Context, req OutboxRequest) (OutboxReply, error)
	// OutboxRetry moves dead letters back to the end of the outbox.
	OutboxRetry(ctx context.Context, req OutboxRequest) (OutboxReply, error)
	// OutboxDrop deletes jobs, pending or dead, with their samples; the
	// centre never learns of them.
	OutboxDrop(ctx context.Context, req OutboxRequest) (OutboxReply, error)

	Close() error
}

// Status describes the agent or the store.
type Status struct {
	// Running: a running agent answered on the socket; false when the CLI
	// opened the store itself.
	Running bool      `json:"running"`
	Ready   bool      `json:"ready"`
	Version string    `json:"version,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started,omitzero"`
	// URL is the listener's base URL, APIURL the BWS routes' (with the
	// base path).
	URL       string `json:"url,omitempty"`
	APIURL    string `json:"apiURL,omitempty"`
	DataDir   string `json:"dataDir"`
	Store     string `json:"store"`
	Apps      int    `json:"apps"`
	Classes   int    `json:"classes"`
	Templates int    `json:"templates"`
}

// NewApp is what AddApp needs.
type NewApp struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Storage    string `json:"storage"`
	Partitions []int  `json:"partitions"`
}

// App is an app as listed (never its secret or hash).
type App struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Storage    string    `json:"storage"`
	Partitions []int     `json:"partitions"`
	Created    time.Time `json:"created"`
}

// Class summarizes a class.
type Class struct {
	BCID      string    `json:"bcid"` // slash form, as BWS answers
	Templates int       `json:"templates"`
	Stale     int       `json:"stale"` // made by an older model: re-enrol
	Updated   time.Time `json:"updated"`
}

// ClassDetail is a class with its templates' metadata.
type ClassDetail struct {
	Class
	List []TemplateInfo `json:"list"`
}

// TemplateInfo is a template's metadata; the vector never leaves the store.
type TemplateInfo struct {
	ID           string    `json:"id"`
	Model        string    `json:"model"`
	ModelVersion string    `json:"modelVersion"`
	Dim          int       `json:"dim"`
	Quality      float64   `json:"quality"`
	Created      time.Time `json:"created"`
	Stale        bool      `json:"stale"`
}

// KeyInfo describes a signing key after a rotation.
type KeyInfo struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Previous int       `json:"previous"` // retired keys still accepted
	Pruned   int       `json:"pruned"`   // retired keys dropped (older than a token lifetime)
}

// Errors of this package. Store errors (store.ErrNotFound, ErrExists,
// ErrInvalid, ErrLocked) pass through unchanged, also over the socket, so
// callers test them the same way in both modes.
var (
	// ErrNoStore: no agent runs and there is no store to open.
	ErrNoStore = errors.New("no store")
	// ErrAgentRunning: the operation needs the store closed (restore).
	ErrAgentRunning = errors.New("the agent is running")
	// ErrRemote is an error the agent reported that has no local kind.
	ErrRemote = errors.New("agent error")
)
