package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/bwsagent/bwsagent/internal/files"
)

// EnvPrefix starts every environment variable the configuration reads.
const EnvPrefix = "BWSAGENT_"

// maxFileSize bounds a configuration file; a real one is a few KiB.
const maxFileSize = 1 << 20

// Setting is one option set on the command line: Key is the key path
// ("listen", "api.corsOrigins"), Value its text as in the environment.
type Setting struct {
	Key, Value string
}

// Sources are the layers above the defaults, applied in this order.
type Sources struct {
	// File is a YAML file; empty: none.
	File string
	// Env is the environment; nil: none.
	Env Env
	// Settings come from command-line flags. For a list option the first
	// setting replaces the list and later ones append, so a repeatable flag
	// (--cors-origin A --cors-origin B) builds a list.
	Settings []Setting
}

// Load builds the configuration: defaults, then File, Env and Settings,
// then Validate. Errors name the key and, for the file, the line.
func Load(src Sources) (Config, error) {
	c := Default()
	if src.File != "" {
		b, err := files.ReadLimited(src.File, maxFileSize)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if err := decodeYAML(b, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", src.File, err)
		}
	}
	if src.Env != nil {
		if err := applyEnv(&c, src.Env); err != nil {
			return c, err
		}
	}
	if err := applySettings(&c, src.Settings); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		if src.File != "" {
			return c, fmt.Errorf("config %s: %w", src.File, err)
		}
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// decodeYAML decodes b over c, rejecting unknown keys by their full path.
func decodeYAML(b []byte, c *Config) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return err
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if err := checkKeys(root, reflect.TypeOf(*c), ""); err != nil {
		return err
	}
	if err := root.Decode(c); err != nil {
		return yamlErr(err)
	}
	return nil
}

// checkKeys walks a mapping node against struct type t and reports the
// first key t does not have, or a duplicate key.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string) error {
	if n.Kind != yaml.MappingNode {
		where := strings.TrimSuffix(prefix, ".")
		if where == "" {
			return fmt.Errorf("line %d: the file must be a mapping of keys to values", n.Line)
		}
		return fmt.Errorf("'%s' (line %d) must be a mapping of keys to values", where, n.Line)
	}
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fields[yamlKey(f)] = f
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		f, ok := fields[k.Value]
		if !ok {
			return fmt.Errorf("unknown key '%s' (line %d)%s", key, k.Line, suggest(k.Value, fields))
		}
		if seen[k.Value] {
			return fmt.Errorf("key '%s' given twice (line %d)", key, k.Line)
		}
		seen[k.Value] = true
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if err := checkKeys(v, f.Type, key+"."); err != nil {
				return err
			}
		}
		// Lists of mappings (sync.map) have their keys checked too.
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct && v.Kind == yaml.SequenceNode {
			for j, item := range v.Content {
				if err := checkKeys(item, f.Type.Elem(), fmt.Sprintf("%s[%d].", key, j)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// suggest names a key that differs only in case, the usual typo
// (data_dir, DataDir for dataDir).
func suggest(key string, fields map[string]reflect.StructField) string {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	for k := range fields {
		if norm(k) == norm(key) {
			return fmt.Sprintf("; did you mean '%s'?", k)
		}
	}
	return ""
}

// yamlErr shortens yaml.v3's type errors ("cannot unmarshal !!str `abc`
// into int") to their lines.
func yamlErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

func yamlKey(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "" {
		return strings.ToLower(f.Name)
	}
	return tag
}

// option is one leaf of the configuration.
type option struct {
	Key string // "api.corsOrigins"
	Env string // "BWSAGENT_API_CORS_ORIGINS"
	v   reflect.Value
}

// options lists the leaves of c in declaration order; their values are
// settable when c is a pointer.
func options(c *Config) []option {
	var out []option
	var walk func(v reflect.Value, key, env string)
	walk = func(v reflect.Value, key, env string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			k, e := key+yamlKey(f), env+snake(yamlKey(f))
			if f.Type.Kind() == reflect.Struct {
				walk(v.Field(i), k+".", e+"_")
				continue
			}
			out = append(out, option{Key: k, Env: EnvPrefix + e, v: v.Field(i)})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "", "")
	return out
}

// Options lists every option's key path and environment variable, in the
// order of the struct.
func Options() []struct{ Key, Env string } {
	var c Config
	var out []struct{ Key, Env string }
	for _, o := range options(&c) {
		out = append(out, struct{ Key, Env string }{o.Key, o.Env})
	}
	return out
}

// snake turns a camelCase key into upper snake case: publicURL →
// PUBLIC_URL, maxUploadBytes → MAX_UPLOAD_BYTES.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) {
			prevLower := unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if prevLower || (unicode.IsUpper(rs[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func applyEnv(c *Config, env Env) error {
	for _, o := range options(c) {
		s, ok := env(o.Env)
		if !ok {
			continue
		}
		if err := setValue(o.v, s, false); err != nil {
			return fmt.Errorf("config: %s ('%s'): %w", o.Env, o.Key, err)
		}
	}
	return nil
}

func applySettings(c *Config, settings []Setting) error {
	if len(settings) == 0 {
		return nil
	}
	byKey := map[string]option{}
	for _, o := range options(c) {
		byKey[o.Key] = o
	}
	listed := map[string]bool{}
	for _, s := range settings {
		o, ok := byKey[s.Key]
		if !ok {
			return fmt.Errorf("config: unknown key '%s'", s.Key)
		}
		appendList := listed[s.Key]
		listed[s.Key] = true
		if err := setValue(o.v, s.Value, appendList); err != nil {
			return fmt.Errorf("config: '%s': %w", s.Key, err)
		}
	}
	return nil
}

// setValue parses s into v by v's type. Lists are comma-separated; with
// appendList the items are added to the current list.
func setValue(v reflect.Value, s string, appendList bool) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("must be a duration such as 30s or 5m, got %q", s)
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		if items == nil {
			items = []string{}
		}
		if appendList {
			items = append(v.Interface().([]string), items...)
		}
		v.Set(reflect.ValueOf(items))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("must be an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("must be a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported option type %s", v.Type())
	}
	return nil
}

// Marshal returns c as YAML, for 'config check --print'.
func (c Config) Marshal() ([]byte, error) {
	return yaml.Marshal(c)
}
