package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/pkg/events"
)

// uploadStatus is the part of sastingest's GET /v1/sarif/{id} the text
// output shows; json and yaml print the whole answer as it came.
type uploadStatus struct {
	ID        string                `json:"id"`
	State     string                `json:"state"`
	Summary   *events.SARIFUploaded `json:"summary"`
	Anomalies []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"anomalies"`
}

func uploadCmd(o *options) *cobra.Command {
	get := &cobra.Command{
		Use:   "get id",
		Short: "The status of a SARIF upload (sastingest's API)",
		Long: `Reads the status of an upload from sastingest (--ingest-server, the same token): its state, what it was
joined to (namespace, app, version), the counts by severity and the fields that were skipped.`,
		Example: "  stateguardctl upload get 43f92c9af94ad96c3c4b2b5e85ec0565acc4a1b2 --ingest-server http://127.0.0.1:8080",
		Args:    exactArgs(1, "one argument: the upload id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := o.call(cmd.Context(), http.MethodGet, o.ingest, "/v1/sarif/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return err
			}
			var doc any
			if err := json.Unmarshal(raw, &doc); err != nil {
				return err
			}
			var st uploadStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				return err
			}
			return o.print(doc, func(out io.Writer, _ bool) error { return printUpload(out, st) })
		},
	}
	return group("upload", "SARIF uploads: get", get)
}

func printUpload(out io.Writer, st uploadStatus) error {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("upload %s: %s", st.ID, st.State)
	if s := st.Summary; s != nil {
		p("  repository: %s@%s (ref %s, category %q)", s.Repository, s.CommitSHA, orDash(s.Ref), s.Category)
		p("  joined to:  %s", joinedTo(s))
		var tools []string
		for _, t := range s.Tools {
			tools = append(tools, strings.TrimSpace(t.Name+" "+t.Version))
		}
		p("  tools:      %s", orDash(strings.Join(tools, ", ")))
		p("  results:    %d (critical %d, high %d, medium %d, low %d); new %d, fixed %d", s.ResultsTotal,
			s.BySeverity.Critical, s.BySeverity.High, s.BySeverity.Medium, s.BySeverity.Low, s.New, s.Fixed)
		if s.Suppressed != nil {
			p("  suppressed: critical %d, high %d, medium %d, low %d", s.Suppressed.Critical, s.Suppressed.High, s.Suppressed.Medium, s.Suppressed.Low)
		}
		p("  received:   %s", s.ReceivedAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	for _, a := range st.Anomalies {
		p("  skipped %s: %s", a.Path, a.Reason)
	}
	return nil
}

func joinedTo(s *events.SARIFUploaded) string {
	if s.Namespace == "" || s.App == "" {
		return "not joined to an application (no namespace and app)"
	}
	v := s.Namespace + "/" + s.App
	if s.Version != "" {
		v += " version " + s.Version
	}
	return v
}
