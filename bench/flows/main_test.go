package main

import (
	"strings"
	"testing"
	"time"
)

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8480/extension/", "http://localhost:1/x", "http://[::1]:2/extension"} {
		u, err := loopbackURL(ok)
		if err != nil || !strings.HasSuffix(u.Path, "/") {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8480/extension/", "https://example.com/", "ftp://127.0.0.1/", "http://127.0.0.1.example.com/"} {
		if _, err := loopbackURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestBounds(t *testing.T) {
	for _, args := range [][]string{
		{"-data-dir", "d", "-flows", "0"},
		{"-data-dir", "d", "-flows", "1000000"},
		{"-data-dir", "d", "-duration", "2h"},
		{"-data-dir", "d", "-concurrency", "10000"},
		{"-url", "http://127.0.0.1:1/"},
		{"-data-dir", "d", "-mix", "verify-only"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestDist(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := dist(ds)
	if l.N != 100 || l.P50 != 50 || l.P95 != 95 || l.P99 != 99 || l.Max != 100 {
		t.Errorf("%+v", l)
	}
	if dist(nil).N != 0 {
		t.Error("empty")
	}
}
