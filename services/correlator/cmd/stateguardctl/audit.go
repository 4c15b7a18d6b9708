package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/config"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// auditCmd is "audit export" and "audit verify": both read the streams
// through NATS (--nats-*), as an auditor with read rights on them.
func auditCmd(o *options) *cobra.Command {
	var since, until, format string
	export := &cobra.Command{
		Use:   "export",
		Short: "Every decision and operator action, with its causes, time, actor and rules version",
		Long: `Reads the SARIF, SNAPSHOT, CERTIFICATE and DECISION streams and prints every decision of the correlator
(pins, unpins, restore recommendations, incidents opened and closed, rotation requests) and every operator
action (incident resolved, finding dismissed, restore requested, rotation requested) stored in the range,
oldest first: --format jsonl (one object per line) or csv (with a header).`,
		Example: "  stateguardctl audit export --since 30d --format csv > audit.csv",
		Args:    exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" && format != "csv" {
				return usageErrorf("--format %q: use jsonl or csv", format)
			}
			from, to, err := timeRange(since, until, time.Now())
			if err != nil {
				return err
			}
			return o.withStreams(cmd.Context(), func(recs []audit.Record, _ *audit.Objects) error {
				es := audit.Export(recs, from, to)
				if format == "csv" {
					return audit.WriteCSV(o.out, es)
				}
				return audit.WriteJSONL(o.out, es)
			})
		},
	}
	export.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	var rulesFiles []string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Replay the inputs and check that the published decisions follow from them",
		Long: `Replays every input event the streams hold (from their beginning: a decision depends on the whole history)
into a fresh correlator state in memory, under the rules each decision names (its rulesversion, read from the
Object Store bucket stateguard-audit, or from a --rules-file with that hash), and compares the decisions it
derives with the published ones stored in the range. Every difference is printed with its event id: altered
(published under that id with other content), not derived (the inputs do not call for it: forged, or its
inputs aged out of the streams), not published (the inputs call for it, no message carries it), published
twice. Exit 0 when every decision agrees, 1 otherwise.`,
		Example: "  stateguardctl audit verify --since 7d",
		Args:    exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, to, err := timeRange(since, until, time.Now())
			if err != nil {
				return err
			}
			return o.withStreams(cmd.Context(), func(recs []audit.Record, objs *audit.Objects) error {
				rules, err := rulesSource(cmd.Context(), objs, rulesFiles)
				if err != nil {
					return err
				}
				res, err := audit.Verify(recs, rules, from, to)
				if err != nil {
					return err
				}
				return o.printVerify(res)
			})
		},
	}
	verify.Flags().StringArrayVar(&rulesFiles, "rules-file", nil, "a rules file the correlator ran with (repeatable), used for the decisions whose rulesversion is its hash when the Object Store does not hold it")
	for _, c := range []*cobra.Command{export, verify} {
		c.Flags().StringVar(&since, "since", "", "start of the range: a duration back from now (7d, 36h) or an RFC 3339 time; empty: everything the streams hold")
		c.Flags().StringVar(&until, "until", "", "end of the range, as --since; empty: now")
	}
	return group("audit", "The audit trail: export it, verify it", export, verify)
}

// timeRange reads --since and --until.
func timeRange(since, until string, now time.Time) (time.Time, time.Time, error) {
	from, err := pointInTime(since, now)
	if err != nil {
		return from, time.Time{}, usageErrorf("--since: %v", err)
	}
	to, err := pointInTime(until, now)
	if err != nil {
		return from, to, usageErrorf("--until: %v", err)
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return from, to, usageErrorf("--until %s is before --since %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return from, to, nil
}

// pointInTime reads "7d", "36h", "90m" (back from now) or an RFC 3339
// time; "" is the zero time (open).
func pointInTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := lookBack(s)
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(-d), nil
}

// lookBack reads a duration that may count days ("7d").
func lookBack(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q: want a number of days (7d), a duration (36h) or an RFC 3339 time", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a number of days (7d), a duration (36h) or an RFC 3339 time", s)
	}
	return d, nil
}

// withStreams connects to NATS, reads the audit's streams and hands them
// (and the audit bucket, nil when it is not there) to fn.
func (o *options) withStreams(ctx context.Context, fn func([]audit.Record, *audit.Objects) error) error {
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
	recs, err := audit.Read(ctx, client.JetStream(), audit.Streams)
	if err != nil {
		return err
	}
	objs, err := audit.BindObjects(ctx, client.JetStream())
	if err != nil && !errors.Is(err, audit.ErrNotFound) {
		return err
	}
	return fn(recs, objs)
}

// rulesSource finds the rules of a version in the given files, then in
// the Object Store.
func rulesSource(ctx context.Context, objs *audit.Objects, files []string) (audit.RulesSource, error) {
	local := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("rules file: %w", err)
		}
		local[config.RulesVersion(b)] = b
	}
	return func(version string) (model.Rules, error) {
		if version == "" {
			return model.Rules{}, errors.New("the decisions carry no rules version (a correlator from before rules versions): give no range that holds them")
		}
		b, ok := local[version]
		if !ok && objs != nil {
			got, err := objs.Get(ctx, audit.RulesObject(version))
			if err != nil {
				return model.Rules{}, err
			}
			b, ok = got, true
		}
		if !ok {
			return model.Rules{}, fmt.Errorf("no rules file with version %s: give it with --rules-file", version)
		}
		if config.RulesVersion(b) != version {
			return model.Rules{}, fmt.Errorf("the stored rules file of version %s hashes to %s: it was altered", version, config.RulesVersion(b))
		}
		return config.ParseRules(b)
	}, nil
}

// printVerify prints the result; differences make exit code 1.
func (o *options) printVerify(res audit.Result) error {
	err := o.print(res, func(w io.Writer, _ bool) error {
		fmt.Fprintf(w, "replayed %d inputs under rules %s: %d decisions derived, %d published in the range, %d agree\n",
			res.Inputs, strings.Join(res.RulesVersions, ", "), res.Derived, res.Published, res.Agreed)
		for _, d := range res.Differences {
			where := ""
			if d.Stream != "" {
				where = fmt.Sprintf(" (%s #%d)", d.Stream, d.Seq)
			}
			fmt.Fprintf(w, "DIFF  %-13s  %s  %s%s: %s\n", d.Problem, d.EventID, d.Type, where, d.Detail)
		}
		if len(res.Differences) == 0 {
			fmt.Fprintln(w, "ok: every published decision follows from the inputs")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(res.Differences) > 0 {
		return fmt.Errorf("audit verify: %d difference(s)", len(res.Differences))
	}
	return nil
}
