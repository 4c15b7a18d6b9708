package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/demo"
	"github.com/stateguard/stateguard/pkg/harness/stack"
)

// runDemo seeds the demo and prints its story, one line per step.
func runDemo(ctx context.Context, s *stack.Stack, root, dir string, out io.Writer) error {
	start := time.Now()
	return demo.Run(ctx, demo.Env{
		RestConfig: s.RestConfig,
		NATSURL:    s.NATSURL,
		IngestURL:  "http://" + s.Addr["sastingest"],
		Token:      s.Token,
		Root:       root,
		Dir:        dir,
		Scene:      demo.Default(),
	}, func(line string) {
		fmt.Fprintf(out, "[%3.0fs] %s\n", time.Since(start).Seconds(), line)
	})
}
