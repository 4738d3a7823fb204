package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bwsagent/bwsagent/agent/bws"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/store"
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	// Short paths: a unix socket path has ~107 bytes at most.
	dir, err := os.MkdirTemp("", "adm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := config.Default()
	c.DataDir = dir
	c, err = c.Resolve(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// agentStub stands in for a running agent: it holds the store open and
// serves a Local on the socket, with hooks that record what they saw.
type agentStub struct {
	local   *Local
	srv     *Server
	done    chan error
	cancel  context.CancelFunc
	mu      sync.Mutex
	deleted []bws.BCID
	rotated []store.KeySet
	outbox  int // OutboxChanged calls
}

func startAgent(t *testing.T, cfg config.Config) *agentStub {
	t.Helper()
	ctx := context.Background()
	db, kf, keys, err := OpenStore(ctx, cfg, StoreOptions{Create: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &agentStub{done: make(chan error, 1)}
	a.local = NewLocal(db, kf, keys, cfg.DataDir, Hooks{
		Status: func(st *Status) { st.Running, st.Ready, st.URL = true, true, "http://127.0.0.1:1" },
		DeleteClass: func(ctx context.Context, c bws.BCID) error {
			a.mu.Lock()
			a.deleted = append(a.deleted, c)
			a.mu.Unlock()
			return db.DeleteClass(ctx, c)
		},
		SigningKeys: func(ks store.KeySet) error {
			a.mu.Lock()
			a.rotated = append(a.rotated, ks)
			a.mu.Unlock()
			return nil
		},
		OutboxChanged: func() {
			a.mu.Lock()
			a.outbox++
			a.mu.Unlock()
		},
	})
	a.srv, err = Listen(cfg.AdminSocket(), a.local, discard())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	go func() { a.done <- a.srv.Serve(sctx) }()
	t.Cleanup(a.stop)
	return a
}

func (a *agentStub) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.srv.Close()
	a.local.db.Close()
	a.cancel = nil
}

func TestSocketModeAndRemoval(t *testing.T) {
	cfg := testConfig(t)
	a := startAgent(t, cfg)
	fi, err := os.Lstat(cfg.AdminSocket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v, want a socket with 0600", fi.Mode())
	}
	if di, _ := os.Stat(cfg.DataDir); di.Mode().Perm()&0o077 != 0 {
		t.Errorf("data dir mode %v: group/others have access", di.Mode().Perm())
	}
	// A second agent must not steal a live socket.
	if _, err := Listen(cfg.AdminSocket(), a.local, discard()); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Errorf("second Listen: %v", err)
	}
	a.stop()
	if _, err := os.Lstat(cfg.AdminSocket()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed on shutdown: %v", err)
	}
}

func TestStaleSocket(t *testing.T) {
	cfg := testConfig(t)
	// A crash leaves the socket file behind with nobody listening.
	ln, err := net.Listen("unix", cfg.AdminSocket())
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(cfg.AdminSocket()); err != nil {
		t.Fatal("stale socket not left behind:", err)
	}
	a := startAgent(t, cfg) // replaces it
	if _, err := a.local.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := Dial(context.Background(), cfg.AdminSocket())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.Status(context.Background()); err != nil || !st.Running {
		t.Fatalf("status over the replaced socket: %+v %v", st, err)
	}
}

func TestSocketPathNotASocket(t *testing.T) {
	cfg := testConfig(t)
	if err := os.WriteFile(cfg.AdminSocket(), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(cfg.AdminSocket(), nil, discard())
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("error %v", err)
	}
}

// The same operations give the same results through the socket and on the
// store directly.
func TestServiceBothModes(t *testing.T) {
	for _, mode := range []string{"socket", "direct"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			cfg := testConfig(t)
			var a *agentStub
			if mode == "socket" {
				a = startAgent(t, cfg)
			}
			svc, err := Connect(ctx, cfg, true)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			_, isClient := svc.(*Client)
			if isClient != (mode == "socket") {
				t.Fatalf("Connect chose %T in %s mode", svc, mode)
			}
			st, err := svc.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Running != (mode == "socket") || st.DataDir != cfg.DataDir {
				t.Errorf("status %+v", st)
			}

			// Apps.
			app, secret, err := svc.AddApp(ctx, NewApp{ID: "kiosk", Name: "Front door", Storage: "bws", Partitions: []int{12, 3, 12}})
			if err != nil {
				t.Fatal(err)
			}
			if len(secret) < 32 || app.ID != "kiosk" || len(app.Partitions) != 2 || app.Partitions[0] != 3 {
				t.Errorf("added %+v, secret %q", app, secret)
			}
			if _, _, err := svc.AddApp(ctx, NewApp{ID: "kiosk", Storage: "bws", Partitions: []int{1}}); !errors.Is(err, store.ErrExists) {
				t.Errorf("duplicate app: %v", err)
			}
			if _, _, err := svc.AddApp(ctx, NewApp{ID: "bad id", Storage: "bws", Partitions: []int{1}}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("bad app id: %v", err)
			}
			if _, _, err := svc.AddApp(ctx, NewApp{ID: "nopart", Storage: "bws"}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("no partition: %v", err)
			}
			apps, err := svc.Apps(ctx)
			if err != nil || len(apps) != 1 || apps[0].Name != "Front door" {
				t.Fatalf("apps %+v %v", apps, err)
			}
			secret2, err := svc.RotateAppSecret(ctx, "kiosk")
			if err != nil || secret2 == secret || secret2 == "" {
				t.Fatalf("rotate: %q %v", secret2, err)
			}
			if _, err := svc.RotateAppSecret(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("rotate unknown: %v", err)
			}

			// Classes: enrol two through the store (the API does it in the
			// agent), then list, show, delete.
			db := dbOf(t, svc, a)
			for _, id := range []int64{4711, 4712} {
				c := bws.BCID{Storage: "bws", Partition: 12, ClassID: id}
				if _, err := db.AddTemplates(ctx, c, store.Template{Model: "m", ModelVersion: "1", Vector: []float32{1, 0}, Quality: 0.5}); err != nil {
					t.Fatal(err)
				}
			}
			cs, err := svc.Classes(ctx, "bws", 12)
			if err != nil || len(cs) != 2 || cs[0].BCID != "bws/12/4711" || cs[0].Templates != 1 {
				t.Fatalf("classes %+v %v", cs, err)
			}
			if cs, _ := svc.Classes(ctx, "bws", 13); len(cs) != 0 {
				t.Errorf("partition 13: %+v", cs)
			}
			d, err := svc.Class(ctx, bws.BCID{Storage: "bws", Partition: 12, ClassID: 4711})
			if err != nil || len(d.List) != 1 || d.List[0].Dim != 2 || d.List[0].Model != "m" {
				t.Fatalf("class %+v %v", d, err)
			}
			if err := svc.DeleteClass(ctx, bws.BCID{Storage: "bws", Partition: 12, ClassID: 4711}); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Class(ctx, bws.BCID{Storage: "bws", Partition: 12, ClassID: 4711}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("deleted class: %v", err)
			}
			if err := svc.DeleteClass(ctx, bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete unknown class: %v", err)
			}
			if a != nil {
				a.mu.Lock()
				if len(a.deleted) != 2 {
					t.Errorf("the agent's DeleteClass hook saw %v", a.deleted)
				}
				a.mu.Unlock()
			}

			// Keys.
			k1, err := svc.RotateSigningKey(ctx)
			if err != nil || k1.ID == "" {
				t.Fatalf("rotate signing: %+v %v", k1, err)
			}
			k2, _ := svc.RotateSigningKey(ctx)
			if k2.ID == k1.ID || k2.Previous < 1 {
				t.Errorf("second rotation: %+v after %+v", k2, k1)
			}
			if a != nil {
				a.mu.Lock()
				if len(a.rotated) != 2 || a.rotated[1].Current.ID != k2.ID {
					t.Errorf("signing key hook: %+v", a.rotated)
				}
				a.mu.Unlock()
			}
			oldKey, _ := config.KeyFile{Path: cfg.TemplateKeyFile}.Load(false)
			n, err := svc.RotateTemplateKey(ctx)
			if err != nil || n < 3 { // a template, the signing keys, the key check
				t.Fatalf("rotate template key: %d %v", n, err)
			}
			newKey, _ := config.KeyFile{Path: cfg.TemplateKeyFile}.Load(false)
			if bytes.Equal(oldKey.Current, newKey.Current) || len(newKey.Previous) != 0 {
				t.Errorf("key file after rotation: previous %d, changed %v", len(newKey.Previous), !bytes.Equal(oldKey.Current, newKey.Current))
			}

			// Backup with the new key, then remove the app and restore.
			var buf bytes.Buffer
			size, err := svc.Backup(ctx, &buf)
			if err != nil || size == 0 {
				t.Fatalf("backup: %d %v", size, err)
			}
			if bytes.Contains(buf.Bytes(), []byte("Front door")) {
				t.Error("backup holds app names in the clear")
			}
			if err := svc.RemoveApp(ctx, "kiosk"); err != nil {
				t.Fatal(err)
			}
			if err := svc.RemoveApp(ctx, "kiosk"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("remove twice: %v", err)
			}
			if err := Restore(ctx, cfg, bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrAgentRunning) {
				t.Errorf("restore with the store open: %v", err)
			}
			svc.Close()
			if a != nil {
				a.stop()
			}
			if err := Restore(ctx, cfg, bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
			l, err := OpenLocal(ctx, cfg, false)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			apps, err = l.Apps(ctx)
			if err != nil || len(apps) != 1 || apps[0].ID != "kiosk" {
				t.Errorf("after restore: %+v %v", apps, err)
			}
			if _, err := l.db.Authenticate(ctx, "kiosk", secret2); err != nil {
				t.Errorf("rotated secret after restore: %v", err)
			}
			audit, _ := l.db.Audit(ctx, 0, 100)
			if len(audit) == 0 || audit[0].App != "admin" {
				t.Errorf("admin actions not audited: %+v", audit)
			}
		})
	}
}

// dbOf returns the store behind svc: the stub agent's, or the direct one.
func dbOf(t *testing.T, svc Service, a *agentStub) *store.DB {
	if a != nil {
		return a.local.db
	}
	return svc.(*Local).db
}

func TestConnectWithoutStore(t *testing.T) {
	cfg := testConfig(t)
	_, err := Connect(context.Background(), cfg, false)
	if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(cfg.TemplateKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Error("a read-only command created a key")
	}
}

func TestOpenStoreMissingKey(t *testing.T) {
	cfg := testConfig(t)
	l, err := OpenLocal(context.Background(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	os.Remove(cfg.TemplateKeyFile)
	_, err = OpenLocal(context.Background(), cfg, true)
	if !errors.Is(err, config.ErrNoKey) || !strings.Contains(err.Error(), "restore the key file") {
		t.Fatalf("error %v", err)
	}
}

func TestOpenStoreLocked(t *testing.T) {
	cfg := testConfig(t)
	db, _, _, err := OpenStore(context.Background(), cfg, StoreOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, _, _, err = OpenStore(context.Background(), cfg, StoreOptions{Timeout: 50e6})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "another bwsagent") {
		t.Fatalf("error %v", err)
	}
}

// A crash between writing the new key and resealing leaves two keys in the
// file; the next open finishes the rotation.
func TestInterruptedTemplateKeyRotation(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	l, err := OpenLocal(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	c := bws.BCID{Storage: "s", Partition: 1, ClassID: 2}
	if _, err := l.db.AddTemplates(ctx, c, store.Template{Model: "m", Vector: []float32{1}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	kf := config.KeyFile{Path: cfg.TemplateKeyFile}
	old, _ := kf.Load(false)
	nk, _ := kf.NewKey()
	if err := kf.Write(config.Keys{Current: nk, Previous: [][]byte{old.Current}}); err != nil {
		t.Fatal(err)
	}
	l, err = OpenLocal(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, _ := kf.Load(false)
	if !bytes.Equal(got.Current, nk) || len(got.Previous) != 0 {
		t.Errorf("rotation not finished: previous %d", len(got.Previous))
	}
	if _, err := l.db.Templates(ctx, c); err != nil {
		t.Errorf("template after finishing the rotation: %v", err)
	}
}

func TestBackupFormat(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	l, err := OpenLocal(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Enough data for several chunks.
	for i := range 300 {
		if _, err := l.db.AddTemplates(ctx, bws.BCID{Storage: "s", Partition: 1, ClassID: int64(i)},
			store.Template{Model: "m", Vector: make([]float32, 512)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	size, err := l.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if size < 2*backupChunk {
		t.Fatalf("snapshot of %d bytes is too small for the test", size)
	}
	keys := l.keys
	readAll := func(b []byte, keys config.Keys) ([]byte, error) {
		r, err := OpenBackup(bytes.NewReader(b), keys)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}
	plain, err := readAll(buf.Bytes(), keys)
	if err != nil || int64(len(plain)) != size {
		t.Fatalf("decrypted %d of %d bytes: %v", len(plain), size, err)
	}
	b := buf.Bytes()
	tests := []struct {
		name string
		data []byte
		keys config.Keys
		want string
	}{
		{"flipped bit", flip(b, len(b)/2), keys, "does not authenticate"},
		{"truncated at a chunk boundary", b[:backupHeader+5+backupChunk+backupOverhead], keys, "truncated"},
		{"truncated", b[:len(b)-10], keys, "truncated"},
		{"appended", append(bytes.Clone(b), 0), keys, "after the last chunk"},
		{"header changed", flip(b, len(backupMagic)+backupIDLen+3), keys, "does not authenticate"},
		{"not a backup", []byte("SQLite format 3\x00........................................"), keys, "not a bwsagent backup"},
		{"other key", b, config.Keys{Current: bytes.Repeat([]byte{1}, 32)}, "another template key"},
	}
	for _, tt := range tests {
		_, err := readAll(tt.data, tt.keys)
		if !errors.Is(err, ErrBackup) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	// A key kept as previous (after a rotation) still opens old backups.
	if _, err := readAll(b, config.Keys{Current: bytes.Repeat([]byte{1}, 32), Previous: [][]byte{keys.Current}}); err != nil {
		t.Errorf("previous key: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// The agent reports the snapshot's size in a trailer after the last byte.
func TestBackupOverSocket(t *testing.T) {
	cfg := testConfig(t)
	startAgent(t, cfg)
	c, err := Dial(context.Background(), cfg.AdminSocket())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := c.Backup(context.Background(), io.Discard)
	if err != nil || n == 0 {
		t.Fatalf("backup over socket: %d %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "admin.sock")); err != nil {
		t.Fatal(err)
	}
}

func TestSocketPathTooLong(t *testing.T) {
	long := "/tmp/" + strings.Repeat("d", 120) + "/admin.sock"
	if _, err := Listen(long, nil, discard()); err == nil || !strings.Contains(err.Error(), "shorter data directory") {
		t.Errorf("Listen: %v", err)
	}
	if _, err := Dial(context.Background(), long); err == nil || !strings.Contains(err.Error(), "shorter data directory") {
		t.Errorf("Dial: %v", err)
	}
}
