package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenario"
)

type store map[string]*model.State

func (s store) Namespaces(context.Context) ([]string, error) {
	var out []string
	for k := range s {
		out = append(out, k)
	}
	return out, nil
}

func (s store) State(_ context.Context, ns string) (*model.State, bool, error) {
	st, ok := s[ns]
	return st, ok, nil
}

func (store) Rules() model.Rules { return model.DefaultRules() }

// apiServer serves the case study up to the critical scan of v2.
func apiServer(t *testing.T) string {
	t.Helper()
	st := model.NewState(scenario.CaseNS)
	for _, ev := range scenario.CaseStudy()[:9] {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), st, in); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := api.ParseTokens([]byte("tok\n"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, store{scenario.CaseNS: st}, tokens, slog.New(slog.DiscardHandler), time.Now)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCommands(t *testing.T) {
	url := apiServer(t)
	tests := []struct {
		name string
		args []string
		want []string
		err  string
	}{
		{name: "status lists the apps", args: []string{"status"}, want: []string{"shop       db", "data-db-0=s2", "shop       web"}},
		{name: "status of one app shows the incident and what to rotate", args: []string{"status", "shop/db"}, want: []string{"s3", "tainted", "open", "db-peer-tls,db-tls"}},
		{name: "why a tainted snapshot", args: []string{"why", "shop/s3"}, want: []string{"not pinned", "tainted: it ran vulnerable versions", "upload u2", "rules G101,G402"}},
		{name: "why a pinned snapshot", args: []string{"why", "shop/s2"}, want: []string{"pinned: restore point of incident inc-", "known-good"}},
		{name: "restore plan prints the manifest", args: []string{"restore-plan", "shop/db"}, want: []string{"kind: PersistentVolumeClaim", "name: s2", "# reason: upload u2"}},
		{name: "json output", args: []string{"-o", "json", "status", "shop/web"}, want: []string{`"app": "web"`}},
		{name: "an unknown app is an error", args: []string{"status", "shop/nope"}, err: "404"},
		{name: "a bad reference is an error", args: []string{"why", "s2"}, err: "want namespace/snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			env := map[string]string{"STATEGUARD_SERVER": url, "STATEGUARD_TOKEN": "tok"}
			err := run(t.Context(), tt.args, func(k string) string { return env[k] }, &out)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestEventsTail(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	var out logtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"--nats-url", srv.ClientURL(), "events", "tail", "--max", "1"}, func(string) string { return "" }, &out)
	}()
	ev := scenario.Snapshot("shop", "data-db-0", "s9", scenario.T0, scenario.Run{App: "db", Versions: []string{"v1"}})
	for {
		// Repeat until the tail is subscribed; JetStream keeps one copy.
		if err := c.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			line := out.String()
			for _, w := range []string{"snapshot.completed", "snapshot-shop-s9", "namespace=shop", "pvc=data-db-0", "volume_snapshot=s9"} {
				if !strings.Contains(line, w) {
					t.Errorf("tail line lacks %q: %s", w, line)
				}
			}
			if n := strings.Count(line, "\n"); n != 1 {
				t.Errorf("%d lines, want 1: %s", n, line)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
