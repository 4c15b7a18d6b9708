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

// certCmd reads certificates from the correlator rather than from
// certwatcher's /metrics: the correlator holds, per certificate, what
// certwatcher reported (certificate.observed and .expiring: serial,
// notAfter, the workloads that mount it, cert-manager's renewal) and
// what it decided (rotation needed, requested, rotated), behind the same
// token as every other command; the metrics hold a number per Secret on an
// unauthenticated port and nothing of its users or rotations.
func certCmd(o *options) *cobra.Command {
	get := &cobra.Command{
		Use:   "get [namespace[/secret]]",
		Short: "Certificates the correlator knows, with days left and rotation state",
		Long: `Lists the TLS certificates certwatcher reported to the correlator (every serial of every Secret it found),
with the days left now, who mounts them and whether a rotation is needed, requested or done.`,
		Example: "  stateguardctl cert get\n  stateguardctl cert get shop/db-tls -o wide",
		Args:    optionalRef("secret"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, secret := scope(args)
			q := ""
			if ns != "" {
				q = "?namespace=" + url.QueryEscape(ns)
			}
			var certs []api.Certificate
			if err := o.get(cmd.Context(), "/v1/certificates"+q, &certs); err != nil {
				return err
			}
			if secret != "" {
				var keep []api.Certificate
				for _, c := range certs {
					if c.Secret == secret {
						keep = append(keep, c)
					}
				}
				if len(keep) == 0 {
					return notFoundErrorf("no certificate known in Secret %s/%s", ns, secret)
				}
				certs = keep
			}
			return o.print(certs, func(out io.Writer, wide bool) error { return certTable(out, certs, wide) })
		},
	}
	var reason string
	rotate := &cobra.Command{
		Use:   "rotate namespace/secret [--reason text]",
		Short: "Ask certwatcher to rotate the certificate in a Secret now (operator token)",
		Long: `Publishes certificate.rotation.requested for the certificate the Secret holds now (as the correlator knows
it), with the operator token's name as actor; certwatcher carries it out (cert-manager renewal or its in-cluster CA)
and reports certificate.rotated or certificate.rotation.failed ("stateguardctl events tail --subject
'stateguard.certificate.>'"). Running it again for the same certificate sends the same request, carried out once.`,
		Example: `  stateguardctl cert rotate shop/db-tls --reason "key copied to a laptop"`,
		Args:    exactRef("secret"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, secret, _ := splitRef(args[0], "secret")
			var rot api.Rotation
			if err := o.post(cmd.Context(), "/v1/certificates/"+url.PathEscape(ns)+"/"+url.PathEscape(secret)+"/rotate", api.RotateRequest{Reason: reason}, &rot); err != nil {
				return err
			}
			return o.print(rot, func(out io.Writer, _ bool) error {
				fmt.Fprintf(out, "rotation of %s/%s (serial %s) requested by %s: %s (request %s)\n", rot.Namespace, rot.Secret, rot.Serial, rot.Actor, rot.Reason, rot.RequestID)
				return nil
			})
		},
	}
	rotate.Flags().StringVar(&reason, "reason", "", "why (recorded in the request)")
	return group("cert", "Certificates: get, rotate", get, rotate)
}

func certTable(out io.Writer, certs []api.Certificate, wide bool) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "NAMESPACE\tSECRET\tSERIAL\tNOT AFTER\tDAYS LEFT\tROTATION\tUSED BY"
	if wide {
		head += "\tCERT-MANAGER\tOBSERVED\tREASON"
	}
	fmt.Fprintln(w, head)
	for _, c := range certs {
		var users []string
		for _, wl := range c.Users.Workloads {
			users = append(users, strings.ToLower(wl.Kind)+"/"+wl.Name)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1f\t%s\t%s", c.Namespace, c.Secret, c.Serial, c.NotAfter.Format(time.RFC3339), c.DaysLeftNow,
			rotation(c.Rotated, c.NeedsRotation, c.RenewsInTime), orDash(strings.Join(users, ",")))
		if wide {
			fmt.Fprintf(w, "\t%s\t%s\t%s", orDash(c.CertManager), c.ObservedAt.Format(time.RFC3339), orDash(c.Reason))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
