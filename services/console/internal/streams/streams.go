package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
)

// Pipeline is what the pipeline page shows.
type Pipeline struct {
	Streams     []StreamStat
	Consumers   []ConsumerStat
	DeadLetters []DeadLetter
	Errors      []string
}

// StreamStat is one stream's size.
type StreamStat struct {
	Name     string
	Messages uint64
	Bytes    uint64
	LastSeq  uint64
	LastTime time.Time
}

// ConsumerStat is one durable consumer's lag.
type ConsumerStat struct {
	Stream, Name  string
	Pending       uint64
	AckPending    int
	Redelivered   int
	LastDelivered uint64
}

// DeadLetter is one dead-lettered event and why.
type DeadLetter struct {
	Seq     uint64
	Subject string
	Time    time.Time
	Reason  string
	Type    string
	ID      string
}

// Step is one event of an incident's history on DECISION.
type Step struct {
	Type     string
	ID       string
	Time     time.Time
	Restore  string
	PVC      string
	Snapshot string
	Phase    string
	Message  string
	Reason   string
	Revision int
	// Supersedes is the recommendation this revision replaces.
	Supersedes string
	// RolledBack is a restore.failed's rolled_back: the claim was put
	// back on its old volume.
	RolledBack bool
}

// RestorePhase is where the restore stood after this step, in the words of
// the Restore's status.phase: Requested (the operator's request),
// Pending (restore.started: checked, nothing changed yet), the phase a
// restore.progressed entered, Completed, RolledBack or Failed. Empty for
// other events (a recommendation's revision).
func (s Step) RestorePhase() string {
	switch s.Type {
	case events.TypeRestoreRequested:
		return "Requested"
	case events.TypeRestoreStarted:
		return "Pending"
	case events.TypeRestoreProgressed:
		return s.Phase
	case events.TypeRestoreCompleted:
		return "Completed"
	case events.TypeRestoreFailed:
		if s.RolledBack {
			return "RolledBack"
		}
		return "Failed"
	}
	return ""
}

// Label names a step for people.
func (s Step) Label() string {
	switch p := s.RestorePhase(); {
	case s.Type == events.TypeRestoreFailed && s.Phase != "":
		return "restore " + p + " (failed in " + s.Phase + ")"
	case p != "":
		return "restore " + p
	}
	t := strings.TrimSuffix(strings.TrimPrefix(s.Type, "io.stateguard."), ".v1")
	if s.Phase != "" {
		t += " " + s.Phase
	}
	return t
}

// Reader reads the streams for the console.
type Reader struct {
	client    *events.Client
	consumers [][2]string
	log       *slog.Logger

	mu        sync.Mutex
	incidents map[string][]Step
	listeners []func(subject string)
}

// maxSteps bounds what is kept per incident.
const maxSteps = 200

// New returns a reader over client; consumers are STREAM:durable pairs.
func New(client *events.Client, consumers []string, log *slog.Logger) *Reader {
	r := &Reader{client: client, log: log, incidents: map[string][]Step{}}
	for _, c := range consumers {
		st, d, _ := strings.Cut(c, ":")
		r.consumers = append(r.consumers, [2]string{st, d})
	}
	return r
}

// OnEvent registers f, called with the subject of every event seen live.
func (r *Reader) OnEvent(f func(subject string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listeners = append(r.listeners, f)
}

// Steps returns the incident's DECISION history seen so far, oldest first.
func (r *Reader) Steps(incident string) []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.incidents[incident])
}

// Run follows every event of every stream with a plain subscription on
// stateguard.> (no consumer on the server: the console's NATS user may not
// create one), indexes the DECISION events of each incident (the
// recommendation's revisions, the restore's phases) and forwards every
// subject to the listeners, until ctx ends. The index holds what arrived
// since the console started.
func (r *Reader) Run(ctx context.Context) error {
	sub, err := r.client.Conn().Subscribe(events.SubjectPrefix+">", func(m *nats.Msg) {
		if strings.HasPrefix(m.Subject, events.SubjectPrefix+"restore.") || strings.HasPrefix(m.Subject, events.SubjectPrefix+"incident.") {
			r.index(m)
		}
		r.notify(m.Subject)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s>: %w", events.SubjectPrefix, err)
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

func (r *Reader) notify(subject string) {
	r.mu.Lock()
	ls := slices.Clone(r.listeners)
	r.mu.Unlock()
	for _, f := range ls {
		f(subject)
	}
}

// decisionData holds the fields of every DECISION event the index reads.
type decisionData struct {
	Incident   string    `json:"incident"`
	IncidentID string    `json:"incident_id"`
	PVC        string    `json:"pvc"`
	Restore    string    `json:"restore"`
	RestoreID  string    `json:"restore_id"`
	Snapshot   string    `json:"snapshot"`
	VolSnap    string    `json:"volume_snapshot"`
	Phase      string    `json:"phase"`
	Message    string    `json:"message"`
	Reason     string    `json:"reason"`
	Revision   int       `json:"revision"`
	Supersedes string    `json:"supersedes"`
	RolledBack bool      `json:"rolled_back"`
	At         time.Time `json:"at"`
}

func (r *Reader) index(m *nats.Msg) {
	ev, err := events.DecodeMsg(m)
	if err != nil {
		return
	}
	var d decisionData
	if json.Unmarshal(ev.Data(), &d) != nil {
		return
	}
	inc := d.Incident
	if inc == "" {
		inc = d.IncidentID
	}
	if inc == "" {
		return
	}
	st := Step{Type: ev.Type(), ID: ev.ID(), Time: ev.Time(), Restore: d.Restore, PVC: d.PVC, Phase: d.Phase,
		Message: d.Message, Reason: d.Reason, Revision: d.Revision, Supersedes: d.Supersedes, Snapshot: d.Snapshot, RolledBack: d.RolledBack}
	if st.Restore == "" {
		st.Restore = d.RestoreID
	}
	if st.Snapshot == "" {
		st.Snapshot = d.VolSnap
	}
	if !d.At.IsZero() {
		st.Time = d.At
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	steps := r.incidents[inc]
	if slices.ContainsFunc(steps, func(s Step) bool { return s.ID == st.ID }) {
		return // a redelivery
	}
	if len(steps) >= maxSteps {
		steps = steps[1:]
	}
	r.incidents[inc] = append(steps, st)
}

// Pipeline reads the streams' sizes, the consumers' lag and the newest dead
// letters.
func (r *Reader) Pipeline(ctx context.Context) Pipeline {
	var p Pipeline
	js := r.client.JetStream()
	names := []string{events.StreamSARIF, events.StreamSnapshot, events.StreamCertificate, events.StreamDecision, events.StreamDeadLetter}
	for _, n := range names {
		s, err := js.Stream(ctx, n)
		if err != nil {
			p.Errors = append(p.Errors, fmt.Sprintf("stream %s: %v", n, err))
			continue
		}
		info := s.CachedInfo()
		p.Streams = append(p.Streams, StreamStat{Name: n, Messages: info.State.Msgs, Bytes: info.State.Bytes, LastSeq: info.State.LastSeq, LastTime: info.State.LastTime})
		if n == events.StreamDeadLetter {
			p.DeadLetters = deadLetters(ctx, s, info.State.FirstSeq, info.State.LastSeq, 20)
		}
	}
	for _, c := range r.consumers {
		cons, err := js.Consumer(ctx, c[0], c[1])
		if err != nil {
			p.Errors = append(p.Errors, fmt.Sprintf("consumer %s/%s: %v", c[0], c[1], err))
			continue
		}
		info := cons.CachedInfo()
		p.Consumers = append(p.Consumers, ConsumerStat{Stream: c[0], Name: c[1], Pending: info.NumPending, AckPending: info.NumAckPending,
			Redelivered: info.NumRedelivered, LastDelivered: info.Delivered.Stream})
	}
	return p
}

// deadLetters reads up to n of the newest dead letters, newest first.
func deadLetters(ctx context.Context, s jetstream.Stream, first, last uint64, n int) []DeadLetter {
	var out []DeadLetter
	for seq := last; seq >= first && seq > 0 && len(out) < n; seq-- {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted or expired
		}
		dl := DeadLetter{Seq: seq, Subject: m.Subject, Time: m.Time, Reason: m.Header.Get(events.HeaderDeadLetterReason)}
		if ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err == nil {
			dl.Type, dl.ID = ev.Type(), ev.ID()
		}
		out = append(out, dl)
	}
	return out
}
