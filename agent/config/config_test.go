package config

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bwsagent/bwsagent/liveness/policy"
)

func envMap(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bwsagent.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

const shipped = "../../configs/bwsagent.yaml"

// The shipped file documents every option with its default.
func TestShippedConfigEqualsDefaults(t *testing.T) {
	got, err := Load(Sources{File: shipped})
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("configs/bwsagent.yaml differs from Default():\n got %+v\nwant %+v", got, want)
	}

	// Every option appears as a key (DeepEqual alone would pass on a file
	// that leaves options out) and its environment variable is named.
	b, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.MappingNode {
				walk(v, prefix+k.Value+".")
				continue
			}
			present[prefix+k.Value] = true
		}
	}
	walk(doc.Content[0], "")
	for _, o := range Options() {
		if !present[o.Key] {
			t.Errorf("configs/bwsagent.yaml lacks option '%s'", o.Key)
		}
		if !bytes.Contains(b, []byte(o.Env)) {
			t.Errorf("configs/bwsagent.yaml does not name %s for '%s'", o.Env, o.Key)
		}
	}
	if len(present) != len(Options()) {
		t.Errorf("file has %d options, Config %d", len(present), len(Options()))
	}
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c Config)
		wantErr string // substring; empty: no error
	}{
		{name: "empty file keeps defaults", yaml: "", check: func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "only comments", yaml: "# nothing\n", check: func(t *testing.T, c Config) {
			if c.Listen != Default().Listen {
				t.Errorf("listen %q", c.Listen)
			}
		}},
		{name: "values", yaml: "listen: 127.0.0.1:9000\nworkers: 2\napi:\n  jobTimeout: 20s\n  corsOrigins: [https://kiosk.example.com]\n",
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:9000" || c.Workers != 2 || c.API.JobTimeout != 20*time.Second ||
					!reflect.DeepEqual(c.API.CORSOrigins, []string{"https://kiosk.example.com"}) {
					t.Errorf("got %+v", c)
				}
				if c.API.BasePath != "/extension/" {
					t.Errorf("unset nested key lost its default: %q", c.API.BasePath)
				}
			}},
		{name: "unknown top-level key", yaml: "listen: 127.0.0.1:1\nlisten_addr: x\n", wantErr: "unknown key 'listen_addr' (line 2)"},
		{name: "unknown nested key", yaml: "api:\n  basePath: /x/\n  corsOrigin: [a]\n", wantErr: "unknown key 'api.corsOrigin' (line 3)"},
		{name: "case typo suggests", yaml: "data_dir: /x\n", wantErr: "did you mean 'dataDir'"},
		{name: "duplicate key", yaml: "listen: a:1\nlisten: b:2\n", wantErr: "given twice"},
		{name: "wrong type", yaml: "workers: many\n", wantErr: "line 1"},
		{name: "bad duration", yaml: "api:\n  jobTimeout: soon\n", wantErr: "soon"},
		{name: "not a mapping", yaml: "- a\n- b\n", wantErr: "mapping"},
		{name: "api not a mapping", yaml: "api: 3\n", wantErr: "'api' (line 1) must be a mapping"},
		{name: "invalid value names key", yaml: "listen: localhost\n", wantErr: "'listen' must be host:port"},
		{name: "file name in validation error", yaml: "logLevel: loud\n", wantErr: "bwsagent.yaml: 'logLevel'"},
		{name: "liveness values", yaml: "liveness:\n  minPad: 0.6\n  maxMoire: 0\n  maxFramed: 1\n", check: func(t *testing.T, c Config) {
			want := Default().Liveness
			want.MinPAD, want.MaxMoire, want.MaxFramed = 0.6, 0, 1
			if c.Liveness != want {
				t.Errorf("got %+v, want %+v", c.Liveness, want)
			}
		}},
		{name: "bad liveness value names key", yaml: "liveness:\n  minPad: 2\n", wantErr: "bwsagent.yaml: 'liveness.minPad' must be in [0, 1], got 2"},
		{name: "liveness NaN", yaml: "liveness:\n  maxFramed: .nan\n", wantErr: "'liveness.maxFramed' must be in [0, 1], got NaN"},
		{name: "liveness wrong type", yaml: "liveness:\n  minPad: high\n", wantErr: "line 2"},
		{name: "unknown liveness key", yaml: "liveness:\n  minPAD: 0.5\n", wantErr: "unknown key 'liveness.minPAD' (line 2); did you mean 'minPad'?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(Sources{File: writeFile(t, tt.yaml)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(Sources{File: filepath.Join(t.TempDir(), "nope.yaml")})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("error %v should name the file", err)
	}
}

// defaults < file < env < flags.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen: 127.0.0.1:1001\nworkers: 1\nlogLevel: warn\napi:\n  corsOrigins: [http://file.example]\n  verifyThreshold: 0.4\n")
	env := envMap(map[string]string{
		"BWSAGENT_LISTEN":            "127.0.0.1:1002",
		"BWSAGENT_WORKERS":           "3",
		"BWSAGENT_API_CORS_ORIGINS":  "http://env1.example, http://env2.example",
		"BWSAGENT_API_JOB_TIMEOUT":   "20s",
		"BWSAGENT_REQUIRE_MODELS":    "1", // not an option: ignored
		"BWSAGENT_API_PUBLIC_URL":    "http://127.0.0.1:1002",
		"BWSAGENT_TEMPLATE_KEY_FILE": "/k",
	})
	c, err := Load(Sources{File: file, Env: env, Settings: []Setting{
		{"listen", "127.0.0.1:1003"},
		{"api.corsOrigins", "http://flag1.example"},
		{"api.corsOrigins", "http://flag2.example"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen: flag over env over file", c.Listen, "127.0.0.1:1003"},
		{"workers: env over file", c.Workers, 3},
		{"logLevel: file over default", c.LogLevel, "warn"},
		{"logFormat: default", c.LogFormat, "text"},
		{"verifyThreshold: file", c.API.VerifyThreshold, 0.4},
		{"jobTimeout: env", c.API.JobTimeout, 20 * time.Second},
		{"publicURL: env", c.API.PublicURL, "http://127.0.0.1:1002"},
		{"templateKeyFile: env", c.TemplateKeyFile, "/k"},
		{"corsOrigins: repeated flags replace, then append", c.API.CORSOrigins, []string{"http://flag1.example", "http://flag2.example"}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	// Env lists are comma-separated.
	c, err = Load(Sources{File: file, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://env1.example", "http://env2.example"}; !reflect.DeepEqual(c.API.CORSOrigins, want) {
		t.Errorf("env list: got %v, want %v", c.API.CORSOrigins, want)
	}
}

func TestEnvAndSettingErrors(t *testing.T) {
	_, err := Load(Sources{Env: envMap(map[string]string{"BWSAGENT_WORKERS": "two"})})
	if err == nil || !strings.Contains(err.Error(), "BWSAGENT_WORKERS ('workers')") {
		t.Errorf("env error %v should name the variable and key", err)
	}
	_, err = Load(Sources{Settings: []Setting{{"nosuch", "1"}}})
	if err == nil || !strings.Contains(err.Error(), "unknown key 'nosuch'") {
		t.Errorf("setting error %v", err)
	}
	_, err = Load(Sources{Settings: []Setting{{"api.jobTimeout", "-1s"}}})
	if err == nil || !strings.Contains(err.Error(), "'api.jobTimeout' must be greater than zero") {
		t.Errorf("validation error %v", err)
	}
}

// Float options of nested sections take their values from the environment
// and the command line like any other.
func TestFloatOptions(t *testing.T) {
	c, err := Load(Sources{
		Env: envMap(map[string]string{
			"BWSAGENT_LIVENESS_MIN_PAD":           "0.75",
			"BWSAGENT_LIVENESS_MAX_MOIRE":         " 1.5e0 ",
			"BWSAGENT_LIVENESS_MIN_PARALLAX_Z":    "3",
			"BWSAGENT_LIVENESS_MAX_FRAMED":        "1",
			"BWSAGENT_SYNC_BACKOFF_JITTER":        "0.1",
			"BWSAGENT_LIVENESS_MIN_CHALLENGE_DEG": "4.5",
		}),
		Settings: []Setting{{"liveness.minChallengeDeg", "5"}, {"capture.fps", "12.5"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := c.Liveness
	checks := []struct {
		name      string
		got, want float64
	}{
		{"liveness.minPad", l.MinPAD, 0.75},
		{"liveness.maxMoire", l.MaxMoire, 1.5},
		{"liveness.minParallaxZ", l.MinParallaxZ, 3},
		{"liveness.maxFramed", l.MaxFramed, 1},
		{"liveness.minChallengeDeg: flag over env", l.MinChallengeDeg, 5},
		{"liveness.maxYaw: default", l.MaxYaw, Default().Liveness.MaxYaw},
		{"sync.backoff.jitter", c.Sync.Backoff.Jitter, 0.1},
		{"capture.fps", c.Capture.FPS, 12.5},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %g, want %g", ch.name, ch.got, ch.want)
		}
	}

	for _, tt := range []struct {
		env  map[string]string
		set  []Setting
		want string
	}{
		{env: map[string]string{"BWSAGENT_LIVENESS_MIN_PAD": "high"}, want: "BWSAGENT_LIVENESS_MIN_PAD ('liveness.minPad'): must be a number"},
		{env: map[string]string{"BWSAGENT_LIVENESS_MIN_PAD": ""}, want: "BWSAGENT_LIVENESS_MIN_PAD ('liveness.minPad'): must be a number"},
		{env: map[string]string{"BWSAGENT_LIVENESS_MIN_PAD": "2"}, want: "'liveness.minPad' must be in [0, 1], got 2"},
		{env: map[string]string{"BWSAGENT_LIVENESS_MAX_SHIFT": "NaN"}, want: "'liveness.maxShift' must be in [0, 1000], got NaN"},
		{set: []Setting{{"liveness.maxFramed", "1,5"}}, want: "'liveness.maxFramed': must be a number"},
		{set: []Setting{{"liveness.minPAD", "0.5"}}, want: "unknown key 'liveness.minPAD'"},
		{env: map[string]string{"BWSAGENT_CAPTURE_FPS": "NaN"}, want: "'capture.fps' must be 0..240"},
		{env: map[string]string{"BWSAGENT_PREVIEW_MAX_FPS": "NaN"}, want: "'preview.maxFPS' must be in (0, 120]"},
	} {
		var env Env
		if tt.env != nil {
			env = envMap(tt.env)
		}
		_, err := Load(Sources{Env: env, Settings: tt.set})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: error %v, want one containing %q", tt.env, tt.set, err, tt.want)
		}
	}
}

func TestEnvNames(t *testing.T) {
	want := map[string]string{
		"listen":                          "BWSAGENT_LISTEN",
		"dataDir":                         "BWSAGENT_DATA_DIR",
		"modelsDir":                       "BWSAGENT_MODELS_DIR", // as the face tests already use it
		"templateKeyFile":                 "BWSAGENT_TEMPLATE_KEY_FILE",
		"api.publicURL":                   "BWSAGENT_API_PUBLIC_URL",
		"api.corsOrigins":                 "BWSAGENT_API_CORS_ORIGINS",
		"api.maxTemplatesPerClass":        "BWSAGENT_API_MAX_TEMPLATES_PER_CLASS",
		"liveness.minPad":                 "BWSAGENT_LIVENESS_MIN_PAD",
		"liveness.minParallaxZ":           "BWSAGENT_LIVENESS_MIN_PARALLAX_Z",
		"liveness.minLandmarkParallaxDeg": "BWSAGENT_LIVENESS_MIN_LANDMARK_PARALLAX_DEG",
	}
	got := map[string]string{}
	for _, o := range Options() {
		got[o.Key] = o.Env
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: env %q, want %q", k, got[k], v)
		}
	}
}

func TestValidateNamesKey(t *testing.T) {
	tests := []struct {
		mod  func(c *Config)
		want string
	}{
		{func(c *Config) { c.Listen = "8480" }, "'listen' must be host:port"},
		{func(c *Config) { c.Listen = ":8480" }, "'listen' must name the host"},
		{func(c *Config) { c.Listen = "127.0.0.1:99999" }, "'listen' must have a port"},
		{func(c *Config) { c.Workers = -1 }, "'workers'"},
		{func(c *Config) { c.LogFormat = "xml" }, "'logFormat' must be text or json"},
		{func(c *Config) { c.ShutdownTimeout = 0 }, "'shutdownTimeout' must be greater than zero"},
		{func(c *Config) { c.WriteTimeout = c.API.JobTimeout }, "'writeTimeout' must be greater than 'api.jobTimeout'"},
		{func(c *Config) { c.API.BasePath = "/extension" }, "'api.basePath' must start and end with '/'"},
		{func(c *Config) { c.API.PublicURL = "127.0.0.1:8480" }, "'api.publicURL'"},
		{func(c *Config) { c.API.CORSOrigins = []string{"*"} }, "'api.corsOrigins' must list origins explicitly"},
		{func(c *Config) { c.API.CORSOrigins = []string{"https://a.example/path"} }, "'api.corsOrigins'"},
		{func(c *Config) { c.API.CORSOrigins = []string{"https://A.example"} }, "lower case"},
		{func(c *Config) { c.API.AllowedHosts = []string{"a b"} }, "'api.allowedHosts'"},
		{func(c *Config) { c.API.MaxUploadBytes = 0 }, "'api.maxUploadBytes'"},
		{func(c *Config) { c.API.MaxPixels = -1 }, "'api.maxPixels'"},
		{func(c *Config) { c.API.MaxSamplesPerToken = 1 }, "'api.maxSamplesPerToken'"},
		{func(c *Config) { c.API.MaxHeldSamples = 10 }, "'api.maxHeldSamples'"},
		{func(c *Config) { c.API.VerifyThreshold = 1 }, "'api.verifyThreshold' must be in (0, 1)"},
		{func(c *Config) { c.API.MaxTemplatesPerClass = 0 }, "'api.maxTemplatesPerClass'"},
		{func(c *Config) { c.API.MaxAuthLockout = time.Second }, "'api.maxAuthLockout'"},
		{func(c *Config) { c.Source = "camera:0\nx" }, "'source'"},
		{func(c *Config) { c.Liveness.MinPAD = 2 }, "'liveness.minPad' must be in [0, 1], got 2"},
		{func(c *Config) { c.Liveness.MinFaceSize = -1 }, "'liveness.minFaceSize' must be in [0, 10000], got -1"},
		{func(c *Config) { c.Liveness.MaxYaw = 0 }, "'liveness.maxYaw' must be in [1, 90], got 0"},
		{func(c *Config) { c.Liveness.MaxScaleChange = math.NaN() }, "'liveness.maxScaleChange' must be in [1, 100], got NaN"},
		{func(c *Config) { c.Liveness.MaxMoire = math.Inf(1) }, "'liveness.maxMoire' must be in [0, 100], got +Inf"},
		{func(c *Config) { c.Liveness.MinChallengeDeg = 50 }, "'liveness.minChallengeDeg' must not exceed 'liveness.maxStepDeg' (45), got 50"},
	}
	for _, tt := range tests {
		c := Default()
		tt.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want one containing %q", err, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	creds := t.TempDir()
	c, err := Default().Resolve(envMap(map[string]string{"HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".local", "state", "bwsagent"); c.DataDir != want {
		t.Errorf("dataDir %q, want %q", c.DataDir, want)
	}
	if c.TemplateKeyFile != filepath.Join(c.DataDir, "template.key") {
		t.Errorf("templateKeyFile %q", c.TemplateKeyFile)
	}
	if c.Workers != runtime.NumCPU() || c.ModelsDir == "" {
		t.Errorf("workers %d, modelsDir %q", c.Workers, c.ModelsDir)
	}
	if c.StorePath() != filepath.Join(c.DataDir, "bwsagent.db") || c.AdminSocket() != filepath.Join(c.DataDir, "admin.sock") {
		t.Errorf("paths %s %s", c.StorePath(), c.AdminSocket())
	}

	// Under systemd: StateDirectory, CacheDirectory, and a credential when
	// it exists.
	env := envMap(map[string]string{
		"STATE_DIRECTORY":       "/var/lib/bwsagent:/var/lib/other",
		"CACHE_DIRECTORY":       "/var/cache/bwsagent",
		"CREDENTIALS_DIRECTORY": creds,
	})
	c, err = Default().Resolve(env)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/bwsagent" || c.ModelsDir != "/var/cache/bwsagent/models" {
		t.Errorf("systemd dirs: %q %q", c.DataDir, c.ModelsDir)
	}
	if c.TemplateKeyFile != "/var/lib/bwsagent/template.key" {
		t.Errorf("no credential yet: key file %q", c.TemplateKeyFile)
	}
	if err := os.WriteFile(filepath.Join(creds, "template.key"), nil, 0o400); err != nil {
		t.Fatal(err)
	}
	c, _ = Default().Resolve(env)
	if c.TemplateKeyFile != filepath.Join(creds, "template.key") {
		t.Errorf("credential: key file %q", c.TemplateKeyFile)
	}

	// Explicit values win and become absolute.
	d := Default()
	d.DataDir, d.Workers = "rel", 3
	c, _ = d.Resolve(env)
	if !filepath.IsAbs(c.DataDir) || filepath.Base(c.DataDir) != "rel" || c.Workers != 3 {
		t.Errorf("explicit: %q %d", c.DataDir, c.Workers)
	}
}

func TestBaseURL(t *testing.T) {
	c := Default()
	for addr, want := range map[string]string{
		"127.0.0.1:8480": "http://127.0.0.1:8480",
		"0.0.0.0:80":     "http://127.0.0.1:80",
		"[::1]:9":        "http://[::1]:9",
	} {
		if got := c.BaseURL(addr); got != want {
			t.Errorf("BaseURL(%s) = %s, want %s", addr, got, want)
		}
	}
	c.API.PublicURL = "https://kiosk.example/"
	if got := c.BaseURL("127.0.0.1:1"); got != "https://kiosk.example" {
		t.Errorf("publicURL: %s", got)
	}
}

// Every liveness threshold out of range is reported under its key.
func TestLivenessErrorsNameTheKey(t *testing.T) {
	typ := reflect.TypeFor[policy.Thresholds]()
	for i := range typ.NumField() {
		key := "'liveness." + typ.Field(i).Tag.Get("yaml") + "'"
		c := Default()
		reflect.ValueOf(&c.Liveness).Elem().Field(i).SetFloat(math.Inf(-1))
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s = -Inf: Validate() = %v, want an error naming %s", typ.Field(i).Name, err, key)
		}
	}
	c := Default()
	c.Liveness.MinChallengeDeg, c.Liveness.MaxStepDeg = 30, 20
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "'liveness.minChallengeDeg' must not exceed 'liveness.maxStepDeg' (20), got 30") {
		t.Errorf("Validate() = %v", err)
	}
}
