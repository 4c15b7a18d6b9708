package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/services/correlator/internal/api"
)

func incidentCmd(o *options) *cobra.Command {
	var status string
	get := &cobra.Command{
		Use:     "get [id]",
		Short:   "List incidents (newest first), or one",
		Example: "  stateguardctl incident get --status open\n  stateguardctl incident get inc-5557ed131b462d2dfb83f618 -o yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var incs []api.Incident
			if len(args) == 1 {
				var inc api.Incident
				if err := o.get(cmd.Context(), "/v1/incidents/"+url.PathEscape(args[0]), &inc); err != nil {
					return err
				}
				incs = []api.Incident{inc}
			} else {
				q := ""
				switch status {
				case "all", "":
				case "open", "closed":
					q = "?status=" + status
				default:
					return usageErrorf("--status %q: use open, closed or all", status)
				}
				if err := o.get(cmd.Context(), "/v1/incidents"+q, &incs); err != nil {
					return err
				}
			}
			var v any = incs
			if len(args) == 1 {
				v = incs[0]
			}
			return o.print(v, func(out io.Writer, wide bool) error { return incidentTable(out, incs, wide) })
		},
	}
	get.Flags().StringVar(&status, "status", "all", "open, closed or all")
	_ = get.RegisterFlagCompletionFunc("status", fixed("open", "closed", "all"))

	describe := &cobra.Command{
		Use:     "describe id",
		Short:   "An incident in full: versions, reasons, lineage, restore points, certificates to rotate",
		Example: "  stateguardctl incident describe inc-5557ed131b462d2dfb83f618",
		Args:    exactArgs(1, "one argument: the incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var inc api.Incident
			if err := o.get(cmd.Context(), "/v1/incidents/"+url.PathEscape(args[0]), &inc); err != nil {
				return err
			}
			return o.print(inc, func(out io.Writer, _ bool) error { return describeIncident(out, inc) })
		},
	}

	var reason string
	resolve := &cobra.Command{
		Use:   "resolve id --reason text",
		Short: "Resolve an open incident without a restore (operator token)",
		Long: `Records an operator's decision that an incident is over without a restore, such as "not exploited: the
endpoint was never exposed". It becomes an incident.resolved event (with the operator token's name as actor);
the incident closes once no vulnerable version of it runs. Needs a token of the operator scope.`,
		Example: `  stateguardctl incident resolve inc-5557ed131b462d2dfb83f618 --reason "not exploited: the endpoint was never exposed"`,
		Args:    exactArgs(1, "one argument: the incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("--reason is required: say why the incident is over")
			}
			var res api.Resolution
			if err := o.post(cmd.Context(), "/v1/incidents/"+url.PathEscape(args[0])+"/resolve", api.ResolveRequest{Reason: reason}, &res); err != nil {
				return err
			}
			return o.print(res, func(out io.Writer, _ bool) error {
				verb := "resolved"
				if !res.Published {
					verb = "was already resolved"
				}
				fmt.Fprintf(out, "incident %s %s by %s: %s (event %s)\n", res.Incident, verb, res.Actor, res.Reason, res.EventID)
				if res.Note != "" {
					fmt.Fprintf(out, "note: %s\n", res.Note)
				}
				return nil
			})
		},
	}
	resolve.Flags().StringVar(&reason, "reason", "", "why the incident is over (required)")
	return group("incident", "Incidents: get, describe, resolve", get, describe, resolve)
}

func incidentTable(out io.Writer, incs []api.Incident, wide bool) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "NAMESPACE\tAPP\tINCIDENT\tSTATUS\tVERSIONS\tSTARTED\tRESTORE POINTS"
	if wide {
		head += "\tCLOSED\tROTATE\tCLOSE REASON"
	}
	fmt.Fprintln(w, head)
	for _, inc := range incs {
		var rps []string
		for _, rp := range inc.RestorePoints {
			rps = append(rps, rp.PVC+"="+rp.Name)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", inc.Namespace, inc.App, inc.ID, openClosed(inc.Open), shortAll(inc.Versions),
			inc.StartTime.Format(time.RFC3339), orDash(strings.Join(rps, ",")))
		if wide {
			closed := "-"
			if !inc.ClosedAt.IsZero() {
				closed = inc.ClosedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "\t%s\t%s\t%s", closed, orDash(strings.Join(inc.Secrets, ",")), orDash(inc.CloseReason))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func describeIncident(out io.Writer, inc api.Incident) error {
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("incident %s", inc.ID)
	p("  app:      %s/%s", inc.Namespace, inc.App)
	p("  status:   %s", openClosed(inc.Open))
	p("  started:  %s (snapshot %s)", inc.StartTime.Format(time.RFC3339), orDash(inc.Start))
	if !inc.Open {
		p("  closed:   %s: %s", inc.ClosedAt.Format(time.RFC3339), orDash(inc.CloseReason))
	}
	p("  versions: %s", strings.Join(inc.Versions, ", "))
	p("  reasons:")
	for _, r := range inc.Reasons {
		p("    - %s (rules %s; event %s)", r.Text, orDash(strings.Join(r.RuleIDs, ",")), r.EventID)
	}
	if len(inc.Lineage) > 0 {
		p("  lineage:")
		for _, l := range inc.Lineage {
			to := "now"
			if l.To != nil {
				to = l.To.Format(time.RFC3339)
			}
			line := fmt.Sprintf("    - pvc %s: %s %s (%s) from %s to %s", l.PVC, l.App, short(l.Version), l.Verdict, l.From.Format(time.RFC3339), to)
			if l.Via != "" {
				line += ", via snapshot " + l.Via
			}
			if l.Note != "" {
				line += "; " + l.Note
			}
			p("%s", line)
		}
	}
	p("  restore points:")
	if len(inc.RestorePoints) == 0 {
		p("    none: no clean, ready snapshot predates the incident")
	}
	for _, rp := range inc.RestorePoints {
		p("    - pvc %s: %s (taken %s)", rp.PVC, rp.Name, rp.Time.Format(time.RFC3339))
	}
	if len(inc.Secrets) > 0 {
		p("  certificates to rotate (possible key exposure): %s", strings.Join(inc.Secrets, ", "))
	}
	p("  caused by events: %s", orDash(strings.Join(inc.Causes, ", ")))
	return nil
}

func findingCmd(o *options) *cobra.Command {
	var rule, fingerprint, reason string
	dismiss := &cobra.Command{
		Use:   "dismiss namespace/app --rule RULE [--fingerprint F] --reason text",
		Short: "Dismiss a finding as a false positive (operator token)",
		Long: `Records an operator's decision that a finding is a false positive: it no longer counts towards the
verdict of the app's versions. Without --fingerprint every finding of the rule for the app is dismissed. It
becomes a finding.dismissed event (with the operator token's name as actor). Needs an operator token.`,
		Example: `  stateguardctl finding dismiss shop/db --rule G101 --reason "test fixture, not a credential"`,
		Args:    exactRef("app"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, app, _ := splitRef(args[0], "app")
			if rule == "" {
				return usageErrorf("--rule is required")
			}
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("--reason is required: say why the finding is a false positive")
			}
			var d api.Dismissal
			req := api.DismissRequest{Namespace: ns, App: app, RuleID: rule, Fingerprint: fingerprint, Reason: reason}
			if err := o.post(cmd.Context(), "/v1/findings/dismiss", req, &d); err != nil {
				return err
			}
			return o.print(d, func(out io.Writer, _ bool) error {
				what := "every finding of rule " + d.RuleID
				if d.Fingerprint != "" {
					what = "finding " + d.Fingerprint + " of rule " + d.RuleID
				}
				verb := "dismissed"
				if !d.Published {
					verb = "was already dismissed"
				}
				fmt.Fprintf(out, "%s of %s/%s %s by %s: %s (event %s)\n", what, d.Namespace, d.App, verb, d.Actor, d.Reason, d.EventID)
				return nil
			})
		},
	}
	dismiss.Flags().StringVar(&rule, "rule", "", "the SARIF rule id (required)")
	dismiss.Flags().StringVar(&fingerprint, "fingerprint", "", "the finding's fingerprint; empty dismisses every finding of the rule for the app")
	dismiss.Flags().StringVar(&reason, "reason", "", "why it is a false positive (required)")
	return group("finding", "Findings: dismiss", dismiss)
}

// fixed completes a flag from a fixed list.
func fixed(vals ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}
