package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bwsagent/bwsagent/agent/bws"
)

func TestApps(t *testing.T) {
	db, clk := openTestDB(t)
	ctx := context.Background()

	secret, err := db.AddApp(ctx, App{ID: "kiosk-1", Name: "Front desk", Storage: "bws", Partitions: []int{12, 3, 12}})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 40 {
		t.Fatalf("secret %q too short", secret)
	}
	a, err := db.App(ctx, "kiosk-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Partitions, []int{3, 12}) || a.Name != "Front desk" || !a.Created.Equal(t0) {
		t.Fatalf("App = %+v", a)
	}
	if strings.Contains(a.SecretHash, secret) || !strings.HasPrefix(a.SecretHash, "$argon2id$v=19$") {
		t.Fatalf("SecretHash %q", a.SecretHash)
	}

	if _, err := db.AddApp(ctx, App{ID: "kiosk-1", Storage: "bws"}); !errors.Is(err, ErrExists) {
		t.Fatalf("AddApp of an existing id = %v", err)
	}

	got, err := db.Authenticate(ctx, "kiosk-1", secret)
	if err != nil || got.ID != "kiosk-1" {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	for _, c := range []struct{ id, secret string }{
		{"kiosk-1", "wrong"}, {"kiosk-1", ""}, {"kiosk-1", secret + "x"}, {"nobody", secret},
		{"kiosk-1", strings.Repeat("x", maxSecretLen+1)},
	} {
		if _, err := db.Authenticate(ctx, c.id, c.secret); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %.10q) = %v, want ErrBadCredentials", c.id, c.secret, err)
		}
	}

	newSecret, err := db.RotateAppSecret(ctx, "kiosk-1")
	if err != nil || newSecret == secret {
		t.Fatalf("RotateAppSecret = %q, %v", newSecret, err)
	}
	if _, err := db.Authenticate(ctx, "kiosk-1", secret); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old secret after rotation: %v", err)
	}
	if _, err := db.Authenticate(ctx, "kiosk-1", newSecret); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	if _, err := db.RotateAppSecret(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RotateAppSecret(nobody) = %v", err)
	}

	hash, err := db.HashSecret("imported-secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutApp(ctx, App{ID: "a0", Storage: "other", SecretHash: hash}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "a0", "imported-secret"); err != nil {
		t.Fatalf("PutApp secret: %v", err)
	}
	apps, err := db.Apps(ctx)
	if err != nil || len(apps) != 2 || apps[0].ID != "a0" || apps[1].ID != "kiosk-1" {
		t.Fatalf("Apps = %+v, %v", apps, err)
	}

	// Apps survive a restart.
	db = reopen(t, db, testOptions(clk))
	if _, err := db.Authenticate(ctx, "kiosk-1", newSecret); err != nil {
		t.Fatalf("after reopen: %v", err)
	}

	if err := db.DeleteApp(ctx, "a0"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteApp(ctx, "a0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteApp = %v", err)
	}
	if _, err := db.App(ctx, "a0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("App after delete = %v", err)
	}
}

func TestAppValidation(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	hash, err := db.HashSecret("s")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		app  App
	}{
		{"no id", App{Storage: "bws", SecretHash: hash}},
		{"id with slash", App{ID: "a/b", Storage: "bws", SecretHash: hash}},
		{"id with colon", App{ID: "a:b", Storage: "bws", SecretHash: hash}},
		{"long id", App{ID: strings.Repeat("a", 65), Storage: "bws", SecretHash: hash}},
		{"bad storage", App{ID: "a", Storage: "b.s", SecretHash: hash}},
		{"no storage", App{ID: "a", SecretHash: hash}},
		{"negative partition", App{ID: "a", Storage: "bws", Partitions: []int{-1}, SecretHash: hash}},
		{"control in name", App{ID: "a", Name: "a\nb", Storage: "bws", SecretHash: hash}},
		{"no hash", App{ID: "a", Storage: "bws"}},
		{"plain secret as hash", App{ID: "a", Storage: "bws", SecretHash: "secret"}},
	}
	for _, tt := range tests {
		if err := db.PutApp(ctx, tt.app); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutApp = %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, err := db.HashSecret(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("HashSecret(\"\") = %v", err)
	}
}

func TestAppAllows(t *testing.T) {
	a := App{Storage: "bws", Partitions: []int{3, 12}}
	tests := []struct {
		b  bws.BCID
		ok bool
	}{
		{bws.BCID{Storage: "bws", Partition: 12, ClassID: 1}, true},
		{bws.BCID{Storage: "bws", Partition: 3, ClassID: 1}, true},
		{bws.BCID{Storage: "bws", Partition: 4, ClassID: 1}, false},
		{bws.BCID{Storage: "other", Partition: 12, ClassID: 1}, false},
		{bws.BCID{Storage: "BWS", Partition: 12, ClassID: 1}, false},
	}
	for _, tt := range tests {
		if got := a.Allows(tt.b); got != tt.ok {
			t.Errorf("Allows(%v) = %v", tt.b, got)
		}
	}
}

func TestParseHash(t *testing.T) {
	p := HashParams{Time: 1, MemoryKiB: 64, Threads: 1}
	good, err := p.hashSecret(strings.NewReader(strings.Repeat("s", 16)), "x")
	if err != nil {
		t.Fatal(err)
	}
	if !verifySecret(good, "x") || verifySecret(good, "y") {
		t.Fatal("verifySecret")
	}
	bad := []string{
		"", "$argon2id$", strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64", "m=999999999", 1),
		strings.Replace(good, "m=64", "m=064", 1),
		strings.Replace(good, "t=1", "t=0", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Replace(good, ",p=1", ",p=1,x=2", 1),
		good + "$",
		good[:len(good)-20],
	}
	for _, h := range bad {
		if _, _, _, err := parseHash(h); err == nil {
			t.Errorf("parseHash(%q) accepted", h)
		}
		if verifySecret(h, "x") {
			t.Errorf("verifySecret(%q) matched", h)
		}
	}
}
