package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bwsagent/bwsagent/face"
)

// modelsVerifyLoad is the child of the agent's model preflight: it loads
// each file with OpenCV. A malformed file aborts this process (gocv cannot
// catch OpenCV's exceptions), which is why the agent runs it apart.
func (m *Main) modelsVerifyLoad(_ context.Context, args []string) error {
	fs := m.newFlagSet("models verify-load", "FILE.onnx…",
		`Loads each ONNX file with OpenCV's DNN module and exits 0 if all load. A
file OpenCV cannot parse makes this process abort with OpenCV's message.
The agent runs it in a child process before loading new or changed model
files, so a bad file fails the start with an error naming it.`)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("models verify-load needs at least one file")
	}
	for _, f := range fs.Args() {
		if err := face.LoadCheck(f); err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout, "ok", f)
	}
	return nil
}

// modelPreflight is the agent's preflight command for Main: this
// executable's 'models verify-load'; nil when the executable cannot be
// found (the agent then loads the models without the preflight).
func modelPreflight() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{exe, "models", "verify-load"}
}
