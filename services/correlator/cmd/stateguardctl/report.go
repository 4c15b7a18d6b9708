package main

import (
	"net/url"

	"github.com/spf13/cobra"
)

// reportCmd asks the correlator for the review-cycle report: the
// correlator computes it, as it holds the state and reads the streams (the
// same code makes the scheduled report), so the CLI needs only a token.
func reportCmd(o *options) *cobra.Command {
	var since, until, namespace, format string
	c := &cobra.Command{
		Use:   "report",
		Short: "The review-cycle report of a period, as Markdown or HTML",
		Long: `Prints the review-cycle report the correlator makes (GET /v1/report): per application, the snapshots taken,
failed and missed, the restore tests passed and failed, the known-good restore point's age and encryption at rest,
the certificates expiring within 30 days and the rotations done (verified or not), the incidents opened and
closed with their time to close, the findings by severity across the uploads and the findings operators dismissed,
by whom and why; first, what the review should look at. -o html draws the charts as SVG.`,
		Example: "  stateguardctl report --since 7d -o html > review.html",
		Args:    exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "md" && format != "html" && format != "json" {
				return usageErrorf("output format %q: use md, html or json", format)
			}
			q := url.Values{"since": {since}, "format": {format}}
			if until != "" {
				q.Set("until", until)
			}
			if namespace != "" {
				q.Set("namespace", namespace)
			}
			var body []byte
			if err := o.get(cmd.Context(), "/v1/report?"+q.Encode(), &body); err != nil {
				return err
			}
			_, err := o.out.Write(body)
			return err
		},
	}
	c.Flags().StringVar(&since, "since", "7d", "length of the period, back from --until: days (7d) or a duration (36h)")
	c.Flags().StringVar(&until, "until", "", "end of the period, RFC 3339 (default: now)")
	c.Flags().StringVar(&namespace, "namespace", "", "only this namespace")
	c.Flags().StringVarP(&format, "output", "o", "md", "md, html or json")
	return c
}
