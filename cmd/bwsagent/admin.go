package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/config"
)

// settingFlag is a flag that sets a configuration key. Only flags given on
// the command line become settings, so they override the file and the
// environment without their defaults doing so; given twice, a list key
// collects both values (--cors-origin A --cors-origin B).
type settingFlag struct {
	key      string
	settings *[]config.Setting
}

func (f settingFlag) String() string { return "" }
func (f settingFlag) Set(v string) error {
	*f.settings = append(*f.settings, config.Setting{Key: f.key, Value: v})
	return nil
}

// configFlags are the options of every command that reads the
// configuration: --config, --data-dir and whatever setting flags the
// command adds.
type configFlags struct {
	fs       *flag.FlagSet
	file     *string
	settings []config.Setting
}

// addConfigFlags adds --config and --data-dir to fs.
func addConfigFlags(fs *flag.FlagSet) *configFlags {
	cf := &configFlags{fs: fs}
	cf.file = fs.String("config", os.Getenv("BWSAGENT_CONFIG"),
		"configuration file (YAML, see configs/bwsagent.yaml; default $BWSAGENT_CONFIG)")
	cf.setting("data-dir", "dataDir", "data directory: store, template key, admin socket (default $STATE_DIRECTORY or ~/.local/state/bwsagent)")
	return cf
}

// setting adds a flag that sets key.
func (cf *configFlags) setting(name, key, usage string) {
	cf.fs.Var(settingFlag{key: key, settings: &cf.settings}, name, usage)
}

// load builds the configuration (defaults, file, BWSAGENT_* environment,
// flags), validates and resolves it.
func (cf *configFlags) load() (config.Config, error) {
	c, err := config.Load(config.Sources{File: *cf.file, Env: os.LookupEnv, Settings: cf.settings})
	if err != nil {
		return c, err
	}
	return c.Resolve(os.LookupEnv)
}

// connect loads the configuration and returns the running agent's admin
// service, or the store opened directly when no agent runs. create lets a
// command make a new store (apps add before the first start).
func (cf *configFlags) connect(ctx context.Context, create bool) (admin.Service, config.Config, error) {
	c, err := cf.load()
	if err != nil {
		return nil, c, err
	}
	svc, err := admin.Connect(ctx, c, create)
	return svc, c, err
}

// printJSON writes v as indented JSON.
func (m *Main) printJSON(v any) error {
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// intsFlag collects a repeatable integer flag; "1,2" also works.
type intsFlag []int

func (f *intsFlag) String() string { return fmt.Sprint([]int(*f)) }
func (f *intsFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 {
			return fmt.Errorf("partition %q: want a number ≥ 0", p)
		}
		*f = append(*f, n)
	}
	return nil
}
