package report

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// States is what the generator reads the correlator's posture from (the
// engine).
type States interface {
	Namespaces(ctx context.Context) ([]string, error)
	State(ctx context.Context, namespace string) (*model.State, bool, error)
	Rules() model.Rules
}

// Generator builds reports from the correlator's states and the streams.
type Generator struct {
	States States
	// Read reads the streams (audit.Read on the correlator's connection).
	Read func(ctx context.Context) ([]audit.Record, error)
}

// Generate builds the report of [since, until] for namespace ("" all).
func (g Generator) Generate(ctx context.Context, since, until time.Time, namespace string) (Report, error) {
	nss, err := g.States.Namespaces(ctx)
	if err != nil {
		return Report{}, err
	}
	slices.Sort(nss)
	var views []model.View
	for _, ns := range nss {
		if namespace != "" && ns != namespace {
			continue
		}
		st, ok, err := g.States.State(ctx, ns)
		if err != nil {
			return Report{}, err
		}
		if ok {
			views = append(views, model.Derive(g.States.Rules(), st))
		}
	}
	recs, err := g.Read(ctx)
	if err != nil {
		return Report{}, err
	}
	return Build(views, recs, since, until, namespace), nil
}

// Handler answers GET /v1/report?since=7d&until=…&namespace=…&format=md|html|json.
func (g Generator) Handler(now func() time.Time, fail func(w http.ResponseWriter, r *http.Request, status int, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		until := now().UTC()
		if s := q.Get("until"); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				fail(w, r, http.StatusBadRequest, fmt.Errorf("until %q: want an RFC 3339 time", s))
				return
			}
			until = t
		}
		back, err := LookBack(or(q.Get("since"), "7d"))
		if err != nil {
			fail(w, r, http.StatusBadRequest, fmt.Errorf("since: %w", err))
			return
		}
		format := or(q.Get("format"), "md")
		if format != "md" && format != "html" && format != "json" {
			fail(w, r, http.StatusBadRequest, fmt.Errorf("format %q: want md, html or json", format))
			return
		}
		rep, err := g.Generate(r.Context(), until.Add(-back), until, q.Get("namespace"))
		if err != nil {
			fail(w, r, http.StatusInternalServerError, err)
			return
		}
		writeFormat(w, rep, format)
	}
}

func writeFormat(w http.ResponseWriter, rep Report, format string) {
	switch format {
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = HTML(w, rep)
	case "json":
		w.Header().Set("Content-Type", "application/json")
		_ = writeJSON(w, rep)
	default:
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_ = Markdown(w, rep)
	}
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// LookBack reads a period: "7d" (days) or a Go duration ("36h").
func LookBack(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("%q: want a number of days (7d) or a duration (36h)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a number of days (7d) or a duration (36h)", s)
	}
	return d, nil
}

// Schedule generates the report of every period of length every, at the
// period's end (periods aligned on the Unix epoch, so every replica makes
// the same report with the same id), stores it in objs and publishes
// report.generated, until ctx ends.
type Schedule struct {
	Generator    Generator
	Every        time.Duration
	Objects      *audit.Objects
	Publish      func(ctx context.Context, ev events.Event) error
	NewEvent     func(typ, id string, payload any) (events.Event, error)
	RulesVersion string
	Log          *slog.Logger
	Now          func() time.Time
}

// Run runs the schedule.
func (s Schedule) Run(ctx context.Context) error {
	for {
		now := s.Now()
		next := now.Truncate(s.Every).Add(s.Every)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next.Sub(now)):
		}
		if _, err := s.Once(ctx, next.Add(-s.Every), next); err != nil {
			s.Log.ErrorContext(ctx, "scheduled report", "until", next, "error", err.Error())
		}
	}
}

// Once generates, stores and announces the report of [since, until].
func (s Schedule) Once(ctx context.Context, since, until time.Time) (events.ReportGenerated, error) {
	rep, err := s.Generator.Generate(ctx, since, until, "")
	if err != nil {
		return events.ReportGenerated{}, err
	}
	id := "report-" + until.UTC().Format("20060102T150405Z")
	p := events.ReportGenerated{ReportID: id, Since: since, Until: until, Apps: len(rep.Apps), Attention: rep.Attention, Scheduled: true, RulesInUse: s.RulesVersion}
	var md, html strings.Builder
	if err := Markdown(&md, rep); err != nil {
		return p, err
	}
	if err := HTML(&html, rep); err != nil {
		return p, err
	}
	if p.Markdown, err = s.Objects.Put(ctx, "reports/"+id+".md", "text/markdown; charset=utf-8", []byte(md.String())); err != nil {
		return p, err
	}
	if p.HTML, err = s.Objects.Put(ctx, "reports/"+id+".html", "text/html; charset=utf-8", []byte(html.String())); err != nil {
		return p, err
	}
	ev, err := s.NewEvent(events.TypeReportGenerated, id, p)
	if err != nil {
		return p, err
	}
	if err := s.Publish(ctx, ev); err != nil {
		return p, err
	}
	s.Log.InfoContext(ctx, "report generated", "report", id, "apps", p.Apps, "attention", len(p.Attention))
	return p, nil
}
