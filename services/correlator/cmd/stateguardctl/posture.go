package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
)

func statusCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "status [namespace/app]",
		Short: "Applications at a glance, or one app's posture",
		Long: `Without an argument: every application with its running and vulnerable versions, known-good snapshots
and open incidents. With namespace/app: its versions and verdicts, snapshots, incidents and certificates.`,
		Example: "  stateguardctl status\n  stateguardctl status shop/db -o yaml",
		Args:    optionalRef("app"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return o.statusAll(cmd.Context())
			}
			if !strings.Contains(args[0], "/") {
				return usageErrorf("%q: want namespace/app", args[0])
			}
			ns, app, _ := splitRef(args[0], "app")
			return o.statusApp(cmd.Context(), ns, app)
		},
	}
}

func (o *options) statusAll(ctx context.Context) error {
	var apps []api.AppSummary
	if err := o.get(ctx, "/v1/apps", &apps); err != nil {
		return err
	}
	return o.print(apps, func(out io.Writer, wide bool) error {
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		head := "NAMESPACE\tAPP\tRUNNING\tVULNERABLE\tKNOWN-GOOD\tOPEN INCIDENTS"
		if wide {
			head += "\tSNAPSHOTS\tINCIDENT IDS"
		}
		fmt.Fprintln(w, head)
		for _, a := range apps {
			var kg []string
			for pvc, snaps := range a.KnownGood {
				kg = append(kg, pvc+"="+strings.Join(snaps, ","))
			}
			slices.Sort(kg)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d", a.Namespace, a.App, shortAll(a.Running), shortAll(a.Vulnerable), orDash(strings.Join(kg, " ")), len(a.OpenIncidents))
			if wide {
				fmt.Fprintf(w, "\t%d\t%s", a.Snapshots, orDash(strings.Join(a.OpenIncidents, ",")))
			}
			fmt.Fprintln(w)
		}
		return w.Flush()
	})
}

func (o *options) statusApp(ctx context.Context, ns, app string) error {
	var p api.Posture
	if err := o.get(ctx, "/v1/apps/"+url.PathEscape(ns)+"/"+url.PathEscape(app), &p); err != nil {
		return err
	}
	return o.print(p, func(out io.Writer, wide bool) error {
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "app %s/%s, running %s\n\nVERSION\tVERDICT\tUPLOADS\n", p.Namespace, p.App, shortAll(p.Running))
		for _, v := range p.Versions {
			var ups []string
			for _, u := range v.Uploads {
				ups = append(ups, u.UploadID)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", short(v.Version), v.Verdict, orDash(strings.Join(ups, ",")))
		}
		fmt.Fprintln(w, "\nSNAPSHOT\tPVC\tTAKEN\tCLASS\tREADY\tENCRYPTION\tPINNED")
		for _, s := range p.Snapshots {
			pin := "-"
			if pp, ok := p.Pinned[s.Name]; ok {
				pin = pp.Reason
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%s\t%s\n", s.Name, s.PVC, s.Time.Format(time.RFC3339), s.Class, s.Ready, orDash(s.Encryption), pin)
		}
		for _, name := range p.UnencryptedKnownGood {
			fmt.Fprintf(w, "WARNING: known-good snapshot %s is not encrypted at rest (the snapshotter's evidence: stateguardctl status -o json)\n", name)
		}
		fmt.Fprintln(w, "\nINCIDENT\tSTATUS\tVERSIONS\tSTARTED\tROTATE")
		for _, inc := range p.Incidents {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", inc.ID, openClosed(inc.Open), shortAll(inc.Versions), inc.StartTime.Format(time.RFC3339), orDash(strings.Join(inc.Secrets, ",")))
		}
		fmt.Fprintln(w, "\nSECRET\tSERIAL\tNOT AFTER\tDAYS LEFT\tROTATION")
		for _, cert := range p.Certificates {
			fmt.Fprintf(w, "%s\t%s\t%s\t%.1f\t%s\n", cert.Secret, cert.Serial, cert.NotAfter.Format(time.RFC3339), cert.DaysLeftNow, rotation(cert.CertView.Rotated, cert.NeedsRotation, cert.RenewsInTime))
		}
		return w.Flush()
	})
}

func openClosed(open bool) string {
	if open {
		return "open"
	}
	return "closed"
}

func rotation(rotated, needs, renewsInTime bool) string {
	switch {
	case rotated:
		return "rotated"
	case needs:
		return "requested"
	case renewsInTime:
		return "cert-manager renews in time"
	}
	return "-"
}

func whyCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "why namespace/snapshot",
		Short:   "Why a snapshot is pinned, clean or tainted",
		Example: "  stateguardctl why shop/db-hourly-data-202612070300",
		Args:    exactRef("snapshot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, _ := splitRef(args[0], "snapshot")
			var why api.Why
			if err := o.get(cmd.Context(), whyPath(ns, name), &why); err != nil {
				return err
			}
			return o.print(why, func(out io.Writer, _ bool) error { return printWhy(out, why, "") })
		},
	}
}

func whyPath(ns, name string) string {
	return "/v1/snapshots/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/why"
}

// printWhy writes the correlator's reading of a snapshot, each line
// indented by indent.
func printWhy(out io.Writer, why api.Why, indent string) error {
	p := func(format string, args ...any) { fmt.Fprintf(out, indent+format+"\n", args...) }
	p("snapshot %s/%s", why.Namespace, why.Snapshot)
	if why.Pin != nil {
		p("  pinned: %s", why.Pin.Reason)
		if len(why.Pin.Causes) > 0 {
			p("    because of events %s", strings.Join(why.Pin.Causes, ", "))
		}
	} else {
		p("  not pinned by the correlator")
	}
	for _, a := range why.Apps {
		p("  app %s: %s", a.App, a.Summary)
		if a.KnownGood {
			p("    known-good: the newest clean, ready snapshot of its PVC")
		}
		for _, v := range a.Versions {
			p("    version %s: %s", short(v.Version), v.Verdict)
			for _, u := range v.Uploads {
				detail := "clean"
				if u.Vulnerable {
					detail = fmt.Sprintf("rules %s, severities %s", orDash(strings.Join(u.RuleIDs, ",")), orDash(strings.Join(u.Severities, ",")))
				}
				p("      upload %s (category %q, event %s): %s", u.UploadID, u.Category, u.EventID, detail)
			}
		}
		for _, id := range a.Incidents {
			p("    incident %s", id)
		}
	}
	return nil
}

func restorePlanCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "restore-plan namespace/app",
		Short: "The restore manifests of the app's open incidents",
		Long: `Prints, for each open incident of the app, the PersistentVolumeClaim that restores its PVC from the
recommended VolumeSnapshot, with the reasons and steps as comments (text), or the plans (json, yaml).`,
		Example: "  stateguardctl restore-plan shop/db > restore.yaml",
		Args:    exactRef("app"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, app, _ := splitRef(args[0], "app")
			var plans []api.RestorePlan
			if err := o.get(cmd.Context(), "/v1/apps/"+url.PathEscape(ns)+"/"+url.PathEscape(app)+"/restore-plan", &plans); err != nil {
				return err
			}
			return o.print(plans, func(out io.Writer, _ bool) error {
				if len(plans) == 0 {
					fmt.Fprintf(out, "# no open incident with a restore point for %s/%s\n", ns, app)
					return nil
				}
				for i, p := range plans {
					if i > 0 {
						fmt.Fprintln(out, "---")
					}
					fmt.Fprintf(out, "# incident %s: restore PVC %s from VolumeSnapshot %s (taken %s)\n", p.Incident, p.PVC, p.VolumeSnapshot, p.SnapshotTime.Format(time.RFC3339))
					for _, r := range p.Reasons {
						fmt.Fprintf(out, "# reason: %s (rules %s; event %s)\n", r.Text, strings.Join(r.RuleIDs, ","), r.EventID)
					}
					for _, s := range p.Steps {
						fmt.Fprintf(out, "# step: %s\n", s)
					}
					fmt.Fprint(out, p.Manifest)
				}
				return nil
			})
		},
	}
}

func eventsCmd(o *options) *cobra.Command {
	var subject string
	var maxEvents int
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print every stateguard event as it is published",
		Long: `Subscribes to the stateguard subjects on NATS and prints one line per event (text), or each event's
CloudEvent (json: one object per line; yaml: one document per event).`,
		Example: "  stateguardctl events tail --subject 'stateguard.restore.>'",
		Args:    exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.tail(cmd.Context(), subject, maxEvents)
		},
	}
	tail.Flags().StringVar(&subject, "subject", events.SubjectPrefix+">", "subject to tail")
	tail.Flags().IntVar(&maxEvents, "max", 0, "stop after this many events (0: until interrupted)")
	return group("events", "Events on NATS", tail)
}

func (o *options) tail(ctx context.Context, subject string, maxEvents int) error {
	cfg := o.nats
	cfg.Name = "stateguardctl"
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
	for n := 0; maxEvents == 0 || n < maxEvents; n++ {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			if err := o.printEvent(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// printEvent writes one message: a line (text, wide), or the CloudEvent
// (json on one line, yaml as one document).
func (o *options) printEvent(m *nats.Msg) error {
	if o.output == outText || o.output == outWide {
		_, err := fmt.Fprintln(o.out, Line(m))
		return err
	}
	var doc any = map[string]any{"subject": m.Subject, "dead_letter_subject": m.Header.Get(events.HeaderDeadLetterSubject),
		"dead_letter_reason": m.Header.Get(events.HeaderDeadLetterReason)}
	if !strings.HasPrefix(m.Subject, events.DeadLetterPrefix) {
		ev, err := events.DecodeMsg(m)
		if err != nil {
			doc = map[string]any{"subject": m.Subject, "malformed": err.Error()}
		} else {
			doc = ev
		}
	}
	if o.output == outJSON {
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.out, "%s\n", b)
		return err
	}
	fmt.Fprintln(o.out, "---")
	return o.print(doc, nil)
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
	for _, k := range []string{"namespace", "app", "pvc", "volume_snapshot", "secret", "incident", "upload_id", "reason", "days_left", "actor"} {
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
