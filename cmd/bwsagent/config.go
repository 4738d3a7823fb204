package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bwsagent/bwsagent/agent"
	"github.com/bwsagent/bwsagent/agent/config"
)

func (m *Main) configCheck(_ context.Context, args []string) error {
	fs := m.newFlagSet("config check", "[options] FILE",
		`Checks a configuration file: YAML syntax, unknown keys, every value (errors
name the key). With --env, BWSAGENT_* environment variables are applied on top,
as 'serve' does. See configs/bwsagent.yaml for every option.`)
	withEnv := fs.Bool("env", false, "apply BWSAGENT_* environment variables too")
	printCfg := fs.Bool("print", false, "print the effective configuration")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("config check needs one FILE")
	}
	src := config.Sources{File: fs.Arg(0)}
	if *withEnv {
		src.Env = os.LookupEnv
	}
	cfg, err := config.Load(src)
	if err != nil {
		return err
	}
	// The API server checks its own options too (same rules, Go names).
	if err := agent.APIConfig(cfg, cfg.BaseURL(cfg.Listen), Version).Validate(); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if *printCfg {
		b, err := cfg.Marshal()
		if err != nil {
			return err
		}
		_, _ = m.Stdout.Write(b)
		return nil
	}
	fmt.Fprintf(m.Stdout, "%s: ok\n", fs.Arg(0))
	return nil
}
