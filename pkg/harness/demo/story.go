package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/stateguard/stateguard/pkg/events"
)

// Story turns the events on stateguard.> into one line per step.
type Story struct {
	// Dir receives the restore manifests of recommendations.
	Dir string
	// Print writes one line.
	Print func(line string)

	mu   sync.Mutex
	seen map[string]bool
	// Reached records which steps happened (by event type).
	reached map[string]int
	// snapshotted counts the completed snapshots each image digest ran on.
	snapshotted map[string]int
	// incidents are the incidents opened, in order; closed those closed.
	incidents []string
	closed    map[string]bool
}

// Follow subscribes to every stateguard subject on nc.
func (s *Story) Follow(nc *nats.Conn) (*nats.Subscription, error) {
	s.seen, s.reached, s.snapshotted, s.closed = map[string]bool{}, map[string]int{}, map[string]int{}, map[string]bool{}
	sub, err := nc.Subscribe(events.SubjectPrefix+">", s.onMsg)
	if err != nil {
		return nil, err
	}
	return sub, nc.Flush()
}

// Snapshotted reports on how many completed snapshots an image digest was
// running.
func (s *Story) Snapshotted(digest string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotted[digest]
}

// Incident is the first incident opened ("" before one opened).
func (s *Story) Incident() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.incidents) == 0 {
		return ""
	}
	return s.incidents[0]
}

// Closed reports whether incident id is closed: an incident.closed came
// and no incident.opened of it since.
func (s *Story) Closed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed[id]
}

// Reached reports how often an event type was told.
func (s *Story) Reached(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reached[typ]
}

func short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func (s *Story) onMsg(m *nats.Msg) {
	if strings.HasPrefix(m.Subject, events.DeadLetterPrefix) {
		s.Print(fmt.Sprintf("dead letter on %s: %s", m.Subject, m.Header.Get(events.HeaderDeadLetterReason)))
		return
	}
	ev, err := events.DecodeMsg(m)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.seen[ev.ID()] {
		s.mu.Unlock()
		return
	}
	s.seen[ev.ID()] = true
	s.reached[ev.Type()]++
	switch ev.Type() {
	case events.TypeIncidentOpened:
		if p, err := events.Decode[events.IncidentOpened](ev); err == nil {
			if !slices.Contains(s.incidents, p.Incident) {
				s.incidents = append(s.incidents, p.Incident)
			}
			// Opened again after it closed (a new generation of it): open
			// until its next incident.closed.
			delete(s.closed, p.Incident)
		}
	case events.TypeIncidentClosed:
		if p, err := events.Decode[events.IncidentClosed](ev); err == nil {
			s.closed[p.Incident] = true
		}
	case events.TypeSnapshotCompleted:
		if p, err := events.Decode[events.SnapshotCompleted](ev); err == nil {
			for _, d := range digestsOf(p) {
				s.snapshotted[d]++
			}
		}
	}
	s.mu.Unlock()
	if line := s.line(ev); line != "" {
		s.Print(line)
	}
}

func (s *Story) line(ev events.Event) string {
	switch ev.Type() {
	case events.TypeSnapshotCompleted:
		p, err := events.Decode[events.SnapshotCompleted](ev)
		if err != nil {
			return ""
		}
		var running []string
		for _, w := range p.Workloads {
			for _, c := range w.Containers {
				running = append(running, fmt.Sprintf("%s %s (%s)", w.App, w.Version, short(c.Digest)))
			}
		}
		what := "running " + strings.Join(running, ", ")
		if len(running) == 0 {
			what = "no workload recorded"
		}
		return fmt.Sprintf("snapshot taken      %s/%s of PVC %s, %s", p.Namespace, p.VolumeSnapshot, p.PVC, what)
	case events.TypeSnapshotFailed:
		p, _ := events.Decode[events.SnapshotFailed](ev)
		return fmt.Sprintf("snapshot failed     %s/%s: %s", p.Namespace, p.PVC, p.Error)
	case events.TypeSARIFUploaded:
		p, err := events.Decode[events.SARIFUploaded](ev)
		if err != nil {
			return ""
		}
		return fmt.Sprintf("SARIF summarised    %s@%s for %s/%s %s: %d results (critical %d, high %d, medium %d), %d new",
			p.Repository, short(p.CommitSHA), p.Namespace, p.App, p.Version, p.ResultsTotal,
			p.BySeverity.Critical, p.BySeverity.High, p.BySeverity.Medium, p.New)
	case events.TypeSnapshotPinRequested:
		p, _ := events.Decode[events.SnapshotPinRequested](ev)
		return fmt.Sprintf("known-good pinned   %s/%s (%s)", p.Namespace, p.VolumeSnapshot, p.Reason)
	case events.TypeSnapshotUnpinRequested:
		p, _ := events.Decode[events.SnapshotUnpinRequested](ev)
		return fmt.Sprintf("unpinned            %s/%s (%s)", p.Namespace, p.VolumeSnapshot, p.Reason)
	case events.TypeIncidentOpened:
		p, _ := events.Decode[events.IncidentOpened](ev)
		return fmt.Sprintf("incident opened     %s for %s/%s: vulnerable %s", p.Incident, p.Namespace, p.App, strings.Join(p.Versions, ", "))
	case events.TypeRestoreRecommended:
		p, err := events.Decode[events.RestoreRecommended](ev)
		if err != nil {
			return ""
		}
		path := filepath.Join(s.Dir, "restore-"+p.Incident+".yaml")
		if err := os.WriteFile(path, []byte(p.Manifest), 0o644); err != nil {
			path = "(not written: " + err.Error() + ")"
		}
		return fmt.Sprintf("restore recommended %s/%s from %s — manifest %s", p.Namespace, p.PVC, p.VolumeSnapshot, path)
	case events.TypeCertificateExpiring:
		p, _ := events.Decode[events.CertificateExpiring](ev)
		return fmt.Sprintf("certificate expiry  %s/%s crosses %s (%.0f days left)", p.Source.Namespace, p.Source.Secret, p.Threshold, p.DaysLeft)
	case events.TypeCertificateRotationRequest:
		p, _ := events.Decode[events.CertificateRotationRequested](ev)
		return fmt.Sprintf("rotation requested  %s/%s: %s", p.Namespace, p.Secret, p.Reason)
	case events.TypeCertificateRotated:
		p, err := events.Decode[events.CertificateRotated](ev)
		if err != nil {
			return ""
		}
		var rolled []string
		for _, w := range p.Rolled {
			rolled = append(rolled, strings.ToLower(w.Kind)+"/"+w.Name)
		}
		return fmt.Sprintf("certificate rotated %s/%s serial %s → %s (%s); workload rolled: %s",
			p.Namespace, p.Secret, short(p.OldSerial), short(p.NewSerial), p.Method, strings.Join(rolled, ", "))
	case events.TypeCertificateRotationFailed:
		p, _ := events.Decode[events.CertificateRotationFailed](ev)
		return fmt.Sprintf("rotation failed     %s/%s: %s", p.Namespace, p.Secret, p.Reason)
	case events.TypeIncidentClosed:
		p, _ := events.Decode[events.IncidentClosed](ev)
		return fmt.Sprintf("incident closed     %s: %s", p.Incident, p.Reason)
	}
	return ""
}

// digestsOf lists the image digests running on a snapshot, once each.
func digestsOf(p events.SnapshotCompleted) []string {
	var ds []string
	for _, w := range p.Workloads {
		for _, c := range w.Containers {
			if !slices.Contains(ds, c.Digest) {
				ds = append(ds, c.Digest)
			}
		}
	}
	return ds
}
