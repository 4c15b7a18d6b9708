package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stateguard/stateguard/pkg/harness/stack"
)

// runDemo seeds the demo and prints its story.
func runDemo(ctx context.Context, s *stack.Stack, out io.Writer) error {
	fmt.Fprintln(out, "demo: not seeded yet in this version (run with -demo=0 for the bare stack)")
	return nil
}
