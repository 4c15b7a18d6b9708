package manifests

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// consoleReads are the JetStream API calls the console's user is granted:
// the five streams' info, its listed durables' info and the dead letters.
func consoleReads() []string {
	var subj []string
	for _, s := range []string{events.StreamSARIF, events.StreamCertificate, events.StreamSnapshot, events.StreamDecision, events.StreamDeadLetter} {
		subj = append(subj, "$JS.API.STREAM.INFO."+s)
	}
	subj = append(subj, "$JS.API.STREAM.MSG.GET."+events.StreamDeadLetter)
	for _, a := range serviceAssets {
		for _, c := range a.consumers {
			subj = append(subj, "$JS.API.CONSUMER.INFO."+c.stream+"."+c.name)
		}
	}
	return subj
}

// TestNATSConsoleOnlyReads checks the console's NATS user (services/console)
// against the shipped auth.conf: it reads what its pipeline page and live
// feed read — every stream's info, every durable's lag, a dead letter by
// sequence, every event on stateguard.> — and is refused everything that
// writes or takes: publishing any event, pulling or acknowledging from a
// durable (stealing the services' deliveries), creating or deleting a
// consumer, reading a bucket, changing a stream.
func TestNATSConsoleOnlyReads(t *testing.T) {
	connect := matrixServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	admin, err := connect(ctx, "admin", "admin", password("admin"))
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	if err := bootstrap(ctx, admin); err != nil {
		t.Fatalf("bootstrap as admin: %v", err)
	}
	console, err := connect(ctx, "console", "console", password("console"), events.WithBind())
	if err != nil {
		t.Fatalf("connect as console: %v", err)
	}
	js := console.JetStream()

	t.Run("allowed", func(t *testing.T) {
		live, err := console.Conn().SubscribeSync(events.SubjectPrefix + ">")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = live.Unsubscribe() }()
		if err := console.Conn().FlushTimeout(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		spec, _ := events.Lookup(events.TypeIncidentOpened)
		ev, err := admin.NewEvent(spec.Type, "console-matrix-live", spec.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if m, err := live.NextMsg(10 * time.Second); err != nil {
			t.Errorf("live event not received: %v", err)
		} else if m.Subject != events.SubjectOf(events.TypeIncidentOpened) {
			t.Errorf("live event on %s", m.Subject)
		}
		for _, s := range []string{events.StreamSARIF, events.StreamCertificate, events.StreamSnapshot, events.StreamDecision, events.StreamDeadLetter} {
			if _, err := js.Stream(ctx, s); err != nil {
				t.Errorf("stream info %s: %v", s, err)
			}
		}
		for _, a := range serviceAssets {
			for _, c := range a.consumers {
				if _, err := js.Consumer(ctx, c.stream, c.name); err != nil {
					t.Errorf("consumer info %s/%s: %v", c.stream, c.name, err)
				}
			}
		}
		ack, err := admin.JetStream().Publish(ctx, events.DeadLetterSubject(events.StreamSARIF, "correlator-sarif"), []byte("dead"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, events.StreamDeadLetter)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := s.GetMsg(ctx, ack.Sequence); err != nil || string(m.Data) != "dead" {
			t.Errorf("read a dead letter: %v", err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		granted := consoleReads()
		var subjects []string
		for _, subj := range forbidden("console") {
			if !slices.Contains(granted, subj) {
				subjects = append(subjects, subj)
			}
		}
		for _, a := range serviceAssets {
			for _, c := range a.consumers {
				subjects = append(subjects, "$JS.API.CONSUMER.MSG.NEXT."+c.stream+"."+c.name, "$JS.ACK."+c.stream+"."+c.name+".1.1.1.1.0")
			}
		}
		subjects = append(subjects, "stateguard.restore.requested", "stateguard.incident.resolved", "stateguard.finding.dismissed",
			"$JS.API.CONSUMER.CREATE."+events.StreamDecision+".tap", "$JS.API.STREAM.MSG.GET."+events.StreamDecision)
		if len(subjects) < 60 {
			t.Fatalf("only %d forbidden subjects listed", len(subjects))
		}
		for _, subj := range subjects {
			if err := deniedPublish(console, subj); err != nil {
				t.Error(err)
			}
		}
		for _, subj := range []string{"$KV.stateguard-correlator.>", "$KV.SARIF_UPLOADS.>", "$JS.EVENT.ADVISORY.>", ">"} {
			if err := deniedSubscribe(console, subj); err != nil {
				t.Error(err)
			}
		}
		if strings.Join(subjects, "") == "" {
			t.Fatal("nothing checked")
		}
	})
}
