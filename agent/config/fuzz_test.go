package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeYAML feeds arbitrary files to the YAML layer: it must return an
// error or a configuration, never panic, and whatever it accepts must
// survive Validate and a Marshal/decode round trip unchanged (what
// 'config check --print' writes must load back to the same settings).
func FuzzDecodeYAML(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "configs", "bwsagent.yaml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"", "# only a comment\n", "~\n", "listen: 127.0.0.1:9000\nworkers: 2\n",
		"api:\n  jobTimeout: 20s\n  corsOrigins: [https://kiosk.example.com]\n",
		"api: 3\n", "- a\n- b\n", "listen: a:1\nlisten: b:2\n", "workers: many\n",
		"api:\n  lockoutWindow: -5m\n  maxPixels: 99999999999999999999\n",
		"&a {listen: *a}\n", "api: &x\n  basePath: /x/\napi2: *x\n", "!!binary aGVsbG8=\n",
		"api:\n  allowedHosts: [\"\\u0000\", \"a\\tb\"]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Default()
		if err := decodeYAML(b, &c); err != nil {
			return
		}
		_ = c.Validate()
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		c2 := Default()
		if err := decodeYAML(out, &c2); err != nil {
			t.Fatalf("marshalled config does not decode: %v\n%s", err, out)
		}
		out2, err := c2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\n---\n%s", out, out2)
		}
	})
}

// FuzzSettings feeds arbitrary values to every option through the
// environment and flag layers: errors name the key, nothing panics.
func FuzzSettings(f *testing.F) {
	for _, s := range []string{"", "30s", "-1", "1e309", "true", "a,b,,c", "9223372036854775808", "\x00", "127.0.0.1:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c := Default()
		for _, o := range options(&c) {
			_ = applyEnv(&c, func(k string) (string, bool) { return v, k == o.Env })
			_ = applySettings(&c, []Setting{{Key: o.Key, Value: v}, {Key: o.Key, Value: v}})
		}
		_ = c.Validate()
		_, _ = c.Resolve(func(string) (string, bool) { return v, true })
	})
}

// FuzzParseKeys feeds arbitrary template key files to the parser.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("# key\n" + string(bytes.Repeat([]byte("ab"), KeySize)) + "\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nzz\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseKeys(b)
		if err != nil {
			return
		}
		if len(keys.Current) != KeySize {
			t.Fatalf("accepted a %d-byte current key", len(keys.Current))
		}
		for _, k := range keys.Previous {
			if len(k) != KeySize {
				t.Fatalf("accepted a %d-byte previous key", len(k))
			}
		}
	})
}
