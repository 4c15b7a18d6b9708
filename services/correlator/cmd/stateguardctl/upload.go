package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
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
	return group("upload", "SARIF uploads: get, list", get, uploadListCmd(o))
}

func uploadListCmd(o *options) *cobra.Command {
	var notJoined bool
	list := &cobra.Command{
		Use:   "list",
		Short: "The uploads that named no application, and how the correlator joined them (or why not)",
		Long: `Lists, from the correlator (--server), every upload that named no application (GitHub's uploaders send a
repository and a commit only): what it was joined to, or why it is not joined yet. --not-joined lists only
those still waiting for a workload that names their repository.`,
		Example: "  stateguardctl upload list --not-joined",
		Args:    exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"limit": {"1000"}}
			if notJoined {
				q.Set("joined", "false")
			}
			all := []api.UploadJoinStatus{}
			for {
				var page []api.UploadJoinStatus
				if err := o.get(cmd.Context(), "/v1/uploads?"+q.Encode(), &page); err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				all = append(all, page...)
				q.Set("after", page[len(page)-1].UploadID)
			}
			return o.print(all, func(out io.Writer, _ bool) error { return uploadTable(out, all) })
		},
	}
	list.Flags().BoolVar(&notJoined, "not-joined", false, "only the uploads not joined")
	return list
}

func uploadTable(out io.Writer, ups []api.UploadJoinStatus) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "UPLOAD\tREPOSITORY\tCATEGORY\tRECEIVED\tJOINED TO")
	for _, u := range ups {
		to := "not joined: " + u.Reason
		if u.State == "joined" {
			var apps []string
			for _, t := range u.JoinedTo {
				apps = append(apps, t.Namespace+"/"+t.App)
			}
			to = strings.Join(apps, ", ")
		}
		received := "-"
		if !u.ReceivedAt.IsZero() {
			received = u.ReceivedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.UploadID, u.Repository, orDash(u.Category), received, to)
	}
	return w.Flush()
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
