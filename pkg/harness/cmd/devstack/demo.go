package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/demo"
	"github.com/stateguard/stateguard/pkg/harness/stack"
)

// runDemo seeds the demo and prints its story, one line per step.
func runDemo(ctx context.Context, s *stack.Stack, root, dir string, out io.Writer) error {
	start := time.Now()
	var claimDir demo.ClaimDirFunc
	if s.Cluster != nil {
		claimDir = s.Cluster.ClaimDir
	}
	res, err := demo.Run(ctx, demo.Env{
		RestConfig: s.RestConfig,
		NATSURL:    s.NATSURL,
		IngestURL:  s.URL("sastingest"),
		Token:      s.Token,
		Root:       root,
		Dir:        dir,
		Scene:      demo.Default(),
		// The story's restore is asked for with the operator token.
		CorrelatorURL: s.URL("correlator"),
		HTTPClient:    s.HTTPClient(),
		OperatorToken: s.OperatorToken,
		ClaimDir:      claimDir,
	}, func(line string) {
		fmt.Fprintf(out, "[%3.0fs] %s\n", time.Since(start).Seconds(), line)
	})
	if err == nil {
		fmt.Fprintf(out, "the story took %s\n", time.Since(start).Round(time.Second))
		fmt.Fprintln(out, incidentLine(s.URL("console"), res.Incident))
	}
	return err
}

// incidentLine is the story's last line: where the console shows its
// incident — reasons, timeline, the restore's phases and how it closed.
func incidentLine(console, incident string) string {
	return fmt.Sprintf("the incident in the console: %s/incidents/%s  (log in with the API token)", console, url.PathEscape(incident))
}
