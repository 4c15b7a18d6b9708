package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/envflag"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
)

const usage = `usage: stateguardctl [flags] <command>

commands:
  status [namespace/app]        applications at a glance, or one app's posture
  why namespace/snapshot        why a snapshot is pinned, clean or tainted
  restore-plan namespace/app    the restore manifests of the app's open incidents
  events tail                   print every stateguard event as it is published

flags:
`

type ctl struct {
	server    string
	token     string
	tokenFile string
	caFile    string
	output    string
	nats      events.ConnConfig
	out       io.Writer
	http      *http.Client
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	c := &ctl{out: stdout, http: &http.Client{Timeout: 30 * time.Second}}
	fs := flag.NewFlagSet("stateguardctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := envflag.New(fs, getenv)
	s.String(&c.server, "server", "STATEGUARD_SERVER", "http://127.0.0.1:8083", "correlator API base URL")
	s.String(&c.token, "token", "STATEGUARD_TOKEN", "", "API bearer token")
	s.String(&c.tokenFile, "token-file", "STATEGUARD_TOKEN_FILE", "", "file holding the API bearer token")
	s.String(&c.caFile, "ca-file", "STATEGUARD_CA_FILE", "", "PEM CA bundle that verifies the correlator's HTTPS certificate (--server https://…)")
	s.String(&c.output, "o", "STATEGUARD_OUTPUT", "text", "output: text or json")
	c.nats.RegisterFlags(s)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c.help(fs)
		}
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return c.help(fs)
	}
	if c.token == "" && c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		c.token = tokenFromFile(b)
	}
	if c.caFile != "" {
		hc, err := httpsClient(c.caFile)
		if err != nil {
			return err
		}
		c.http = hc
	}
	switch cmd, rest := rest[0], rest[1:]; cmd {
	case "status":
		return c.status(ctx, rest)
	case "why":
		return c.why(ctx, rest)
	case "restore-plan":
		return c.restorePlan(ctx, rest)
	case "events":
		if len(rest) == 0 || rest[0] != "tail" {
			return errors.New("usage: stateguardctl events tail [--subject s] [--max n]")
		}
		return c.tail(ctx, rest[1:], getenv)
	default:
		return fmt.Errorf("unknown command %q (try status, why, restore-plan, events tail)", cmd)
	}
}

// httpsClient trusts the CAs in caFile (and TLS 1.2 or newer) instead of
// the system's.
func httpsClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}

func (c *ctl) help(fs *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString(usage)
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return errors.New(b.String())
}

func splitRef(args []string, what string) (string, string, error) {
	if len(args) != 1 {
		return "", "", fmt.Errorf("want one argument: namespace/%s", what)
	}
	ns, name, ok := strings.Cut(args[0], "/")
	if !ok || ns == "" || name == "" {
		return "", "", fmt.Errorf("%q: want namespace/%s", args[0], what)
	}
	return ns, name, nil
}

func (c *ctl) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.server, "/")+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, e.Error)
	}
	if c.output == "json" {
		_, err := c.out.Write(body)
		return errors.Join(err, errJSONDone)
	}
	return json.Unmarshal(body, into)
}

// errJSONDone ends a command whose raw JSON was printed.
var errJSONDone = errors.New("json printed")

func done(err error) error {
	if errors.Is(err, errJSONDone) {
		return nil
	}
	return err
}

func short(v string) string {
	if d, ok := strings.CutPrefix(v, "sha256:"); ok && len(d) > 12 {
		return "sha256:" + d[:12]
	}
	return v
}

func shortAll(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = short(v)
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

func (c *ctl) status(ctx context.Context, args []string) error {
	if len(args) == 0 {
		var apps []api.AppSummary
		if err := c.get(ctx, "/v1/apps", &apps); err != nil {
			return done(err)
		}
		w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAMESPACE\tAPP\tRUNNING\tVULNERABLE\tKNOWN-GOOD\tOPEN INCIDENTS")
		for _, a := range apps {
			var kg []string
			for pvc, snaps := range a.KnownGood {
				kg = append(kg, pvc+"="+strings.Join(snaps, ","))
			}
			slices.Sort(kg)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", a.Namespace, a.App, shortAll(a.Running), shortAll(a.Vulnerable), orDash(strings.Join(kg, " ")), len(a.OpenIncidents))
		}
		return w.Flush()
	}
	ns, app, err := splitRef(args, "app")
	if err != nil {
		return err
	}
	var p api.Posture
	if err := c.get(ctx, "/v1/apps/"+url.PathEscape(ns)+"/"+url.PathEscape(app), &p); err != nil {
		return done(err)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "app %s/%s, running %s\n\nVERSION\tVERDICT\tUPLOADS\n", p.Namespace, p.App, shortAll(p.Running))
	for _, v := range p.Versions {
		var ups []string
		for _, u := range v.Uploads {
			ups = append(ups, u.UploadID)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", short(v.Version), v.Verdict, orDash(strings.Join(ups, ",")))
	}
	fmt.Fprintln(w, "\nSNAPSHOT\tPVC\tTAKEN\tCLASS\tREADY\tPINNED")
	for _, s := range p.Snapshots {
		pin := "-"
		if pp, ok := p.Pinned[s.Name]; ok {
			pin = pp.Reason
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%s\n", s.Name, s.PVC, s.Time.Format(time.RFC3339), s.Class, s.Ready, pin)
	}
	fmt.Fprintln(w, "\nINCIDENT\tSTATUS\tVERSIONS\tSTARTED\tROTATE")
	for _, inc := range p.Incidents {
		status := "closed"
		if inc.Open {
			status = "open"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", inc.ID, status, shortAll(inc.Versions), inc.StartTime.Format(time.RFC3339), orDash(strings.Join(inc.Secrets, ",")))
	}
	fmt.Fprintln(w, "\nSECRET\tSERIAL\tNOT AFTER\tDAYS LEFT\tROTATION")
	for _, cert := range p.Certificates {
		rot := "-"
		switch {
		case cert.Rotated:
			rot = "rotated"
		case cert.NeedsRotation:
			rot = "requested"
		case cert.RenewsInTime:
			rot = "cert-manager renews in time"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.1f\t%s\n", cert.Secret, cert.Serial, cert.NotAfter.Format(time.RFC3339), cert.DaysLeftNow, rot)
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *ctl) why(ctx context.Context, args []string) error {
	ns, name, err := splitRef(args, "snapshot")
	if err != nil {
		return err
	}
	var why api.Why
	if err := c.get(ctx, "/v1/snapshots/"+url.PathEscape(ns)+"/"+url.PathEscape(name)+"/why", &why); err != nil {
		return done(err)
	}
	fmt.Fprintf(c.out, "snapshot %s/%s\n", why.Namespace, why.Snapshot)
	if why.Pin != nil {
		fmt.Fprintf(c.out, "  pinned: %s\n", why.Pin.Reason)
		if len(why.Pin.Causes) > 0 {
			fmt.Fprintf(c.out, "    because of events %s\n", strings.Join(why.Pin.Causes, ", "))
		}
	} else {
		fmt.Fprintln(c.out, "  not pinned by the correlator")
	}
	for _, a := range why.Apps {
		fmt.Fprintf(c.out, "  app %s: %s\n", a.App, a.Summary)
		if a.KnownGood {
			fmt.Fprintln(c.out, "    known-good: the newest clean, ready snapshot of its PVC")
		}
		for _, v := range a.Versions {
			fmt.Fprintf(c.out, "    version %s: %s\n", short(v.Version), v.Verdict)
			for _, u := range v.Uploads {
				detail := "clean"
				if u.Vulnerable {
					detail = fmt.Sprintf("rules %s, severities %s", orDash(strings.Join(u.RuleIDs, ",")), orDash(strings.Join(u.Severities, ",")))
				}
				fmt.Fprintf(c.out, "      upload %s (category %q, event %s): %s\n", u.UploadID, u.Category, u.EventID, detail)
			}
		}
		for _, id := range a.Incidents {
			fmt.Fprintf(c.out, "    incident %s\n", id)
		}
	}
	return nil
}

func (c *ctl) restorePlan(ctx context.Context, args []string) error {
	ns, app, err := splitRef(args, "app")
	if err != nil {
		return err
	}
	var plans []api.RestorePlan
	if err := c.get(ctx, "/v1/apps/"+url.PathEscape(ns)+"/"+url.PathEscape(app)+"/restore-plan", &plans); err != nil {
		return done(err)
	}
	if len(plans) == 0 {
		fmt.Fprintf(c.out, "# no open incident with a restore point for %s/%s\n", ns, app)
		return nil
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(c.out, "---")
		}
		fmt.Fprintf(c.out, "# incident %s: restore PVC %s from VolumeSnapshot %s (taken %s)\n", p.Incident, p.PVC, p.VolumeSnapshot, p.SnapshotTime.Format(time.RFC3339))
		for _, r := range p.Reasons {
			fmt.Fprintf(c.out, "# reason: %s (rules %s; event %s)\n", r.Text, strings.Join(r.RuleIDs, ","), r.EventID)
		}
		for _, s := range p.Steps {
			fmt.Fprintf(c.out, "# step: %s\n", s)
		}
		fmt.Fprint(c.out, p.Manifest)
	}
	return nil
}

func (c *ctl) tail(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := envflag.New(fs, getenv)
	var subject string
	var max int
	s.String(&subject, "subject", "", events.SubjectPrefix+">", "subject to tail")
	s.Int(&max, "max", "", 0, "stop after this many events (0: until interrupted)")
	if err := s.Parse(args); err != nil {
		return err
	}
	cfg := c.nats
	cfg.Name = "stateguardctl"
	cfg.MaxReconnects = -1
	client, err := events.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Close(cctx)
	}()
	msgs := make(chan *nats.Msg, 1024)
	sub, err := client.Conn().ChanSubscribe(subject, msgs)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Conn().FlushWithContext(fctx); err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	for n := 0; max == 0 || n < max; n++ {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			fmt.Fprintln(c.out, Line(m))
		}
	}
	return nil
}

// Line is the one-line form of a message: time, type, id and the fields
// that name what it is about.
func Line(m *nats.Msg) string {
	if strings.HasPrefix(m.Subject, events.DeadLetterPrefix) {
		return fmt.Sprintf("%s  dead-letter  %s  reason=%q", time.Now().UTC().Format(time.RFC3339), m.Header.Get(events.HeaderDeadLetterSubject), m.Header.Get(events.HeaderDeadLetterReason))
	}
	ev, err := events.DecodeMsg(m)
	if err != nil {
		return fmt.Sprintf("%s  malformed  %s  %v", time.Now().UTC().Format(time.RFC3339), m.Subject, err)
	}
	var data map[string]any
	_ = json.Unmarshal(ev.Data(), &data)
	var fields []string
	for _, k := range []string{"namespace", "app", "pvc", "volume_snapshot", "secret", "incident", "upload_id", "reason", "days_left"} {
		v, ok := data[k]
		if !ok || v == "" || v == nil {
			continue
		}
		fields = append(fields, fmt.Sprintf("%s=%v", k, v))
	}
	if src, ok := data["source"].(map[string]any); ok {
		if sec, ok := src["secret"]; ok {
			fields = append(fields, fmt.Sprintf("secret=%v/%v", src["namespace"], sec))
		}
	}
	typ := strings.TrimSuffix(strings.TrimPrefix(ev.Type(), "io.stateguard."), ".v1")
	return fmt.Sprintf("%s  %-32s  %s  %s", ev.Time().UTC().Format(time.RFC3339), typ, ev.ID(), strings.Join(fields, " "))
}

// tokenFromFile is the first token of a tokens file: blank lines and lines
// starting with # are skipped, as the correlator's own reader does.
func tokenFromFile(b []byte) string {
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return ""
}
