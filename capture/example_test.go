package capture_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/bwsagent/bwsagent/capture"
)

// A capture loop on the demo source with a selfie-view preview consumer.
func Example() {
	src, err := capture.ParseURI("demo", capture.Options{Width: 320, Height: 240})
	if err != nil {
		fmt.Println(err)
		return
	}
	loop := &capture.Loop{
		Source: src,
		Mirror: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	preview := loop.Subscribe("preview", 1) // newest frame only
	if err := loop.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer loop.Close()

	f, err := preview.Latest(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close() // the receiver owns the Mat
	fmt.Println(f.Width, f.Height, f.Seq > 0)
	// Output: 320 240 true
}
