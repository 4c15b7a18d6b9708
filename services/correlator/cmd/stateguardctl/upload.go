package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/pkg/events"
)

// uploadStatus is the part of sastingest's GET /v1/sarif/{id} the text
// output shows; json and yaml print the whole answer as it came, with the
// correlator's join under "correlator_join" when it was asked.
type uploadStatus struct {
	ID        string                `json:"id"`
	State     string                `json:"state"`
	Summary   *events.SARIFUploaded `json:"summary"`
	Anomalies []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"anomalies"`
	Join *struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
	} `json:"join"`
}

// correlatorJoin is the correlator's GET /v1/uploads/{id}: how it joined
// an upload that named no application (api.UploadJoinStatus).
type correlatorJoin struct {
	State    string `json:"state"`
	Reason   string `json:"reason"`
	JoinedTo []struct {
		Namespace string `json:"namespace"`
		App       string `json:"app"`
		Category  string `json:"category"`
		Source    string `json:"source"`
	} `json:"joined_to"`
}

func uploadCmd(o *options) *cobra.Command {
	get := &cobra.Command{
		Use:   "get id",
		Short: "The status of a SARIF upload (sastingest's API, and the correlator's join)",
		Long: `Reads the status of an upload from sastingest (--ingest-server, the same token): its state, what it was
joined to (namespace, app, version), the counts by severity and the fields that were skipped. An upload that
named no application (GitHub's uploaders send a repository and a commit only) is joined by the correlator
(--server): by the workloads that name its repository, or the rules file's repositories; until then it is
shown as "not joined" with the reason.`,
		Example: "  stateguardctl upload get 43f92c9af94ad96c3c4b2b5e85ec0565acc4a1b2 --ingest-server http://127.0.0.1:8080",
		Args:    exactArgs(1, "one argument: the upload id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := o.call(cmd.Context(), http.MethodGet, o.ingest, "/v1/sarif/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return err
			}
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				return err
			}
			var st uploadStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				return err
			}
			var cj *correlatorJoin
			var cjErr error
			if s := st.Summary; s != nil && (s.App == "" || s.Namespace == "") {
				cj, cjErr = o.correlatorJoin(cmd, args[0])
				if cj != nil {
					doc["correlator_join"] = cj
				}
			}
			return o.print(doc, func(out io.Writer, _ bool) error { return printUpload(out, st, cj, cjErr) })
		},
	}
	return group("upload", "SARIF uploads: get", get)
}

// correlatorJoin asks the correlator how it joined an upload; nil, nil
// when it has no record of it (not seen yet).
func (o *options) correlatorJoin(cmd *cobra.Command, id string) (*correlatorJoin, error) {
	var cj correlatorJoin
	err := o.get(cmd.Context(), "/v1/uploads/"+url.PathEscape(id), &cj)
	var ce *codedError
	if errors.As(err, &ce) && ce.code == exitNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &cj, nil
}

func printUpload(out io.Writer, st uploadStatus, cj *correlatorJoin, cjErr error) error {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("upload %s: %s", st.ID, st.State)
	if s := st.Summary; s != nil {
		p("  repository: %s@%s (ref %s, category %q)", s.Repository, s.CommitSHA, orDash(s.Ref), s.Category)
		p("  joined to:  %s", joinedTo(st, cj, cjErr))
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

// joinedTo says what an upload is joined to: the namespace and app it
// named, else the correlator's join by repository, else why not.
func joinedTo(st uploadStatus, cj *correlatorJoin, cjErr error) string {
	s := st.Summary
	if s.Namespace != "" && s.App != "" {
		v := s.Namespace + "/" + s.App
		if s.Version != "" {
			v += " version " + s.Version
		}
		return v
	}
	switch {
	case cj != nil && len(cj.JoinedTo) > 0:
		var apps []string
		for _, t := range cj.JoinedTo {
			apps = append(apps, t.Namespace+"/"+t.App+" (by "+t.Source+")")
		}
		return strings.Join(apps, ", ") + " — by repository " + s.Repository + ", commit " + s.CommitSHA
	case cj != nil:
		return "not joined: " + cj.Reason
	case cjErr != nil:
		return "not joined (the upload names no application; the correlator could not be asked: " + cjErr.Error() + ")"
	case st.Join != nil && st.Join.Reason != "":
		return "not joined: " + st.Join.Reason
	}
	return "not joined: the upload names no application and the correlator has not seen it yet"
}
