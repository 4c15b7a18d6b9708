package restore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
)

// Recommendation is what the snapshotter keeps of a restore.recommended
// event: the snapshot an incident recommends restoring a claim from, and
// which revision of the recommendation said so.
type Recommendation struct {
	Namespace      string    `json:"namespace"`
	Incident       string    `json:"incident"`
	PVC            string    `json:"pvc"`
	VolumeSnapshot string    `json:"volume_snapshot"`
	Revision       int       `json:"revision"`
	EventID        string    `json:"event_id"`
	At             time.Time `json:"at"`
}

// Recommendations gives an incident's current recommendations: the
// newest revision for each claim of namespace.
type Recommendations interface {
	Recommended(ctx context.Context, namespace, incident string) ([]Recommendation, error)
}

// Supersedes reports whether recommendation b replaces a (the one kept so
// far, nil when none): a higher revision wins; at the same revision (the
// correlator publishes one event per revision, so only a replay differs)
// the later event, then the greater event id, so every order of the same
// events keeps the same one.
func Supersedes(b Recommendation, a *Recommendation) bool {
	switch {
	case a == nil:
		return true
	case b.Revision != a.Revision:
		return b.Revision > a.Revision
	case !b.At.Equal(a.At):
		return b.At.After(a.At)
	}
	return b.EventID > a.EventID
}

// Follow picks, among an incident's current recommendations, the one a
// Restore naming the incident (and pvc, when set) follows. None yet is
// nil (the Restore waits for it); several claims and no pvc is a failure
// naming them.
func Follow(recs []Recommendation, incident, pvc string) (*Recommendation, error) {
	var match []Recommendation
	for _, r := range recs {
		if r.Incident == incident && (pvc == "" || r.PVC == pvc) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		return nil, nil
	case 1:
		return &match[0], nil
	}
	claims := make([]string, 0, len(match))
	for _, r := range match {
		claims = append(claims, r.PVC)
	}
	slices.Sort(claims)
	return nil, fail("AmbiguousIncident", "incident %s recommends restoring several claims (%s): set spec.pvc, one Restore per claim", incident, strings.Join(claims, ", "))
}

// RecommendationsConsumerName is the durable consumer of restore
// recommendations.
const RecommendationsConsumerName = "snapshotter-recommendations"

// RecommendationsConsumer is the consumer configuration of restore
// recommendations, on the DECISION stream.
func RecommendationsConsumer() events.ConsumerConfig {
	return events.ConsumerConfig{
		Stream:   events.StreamDecision,
		Name:     RecommendationsConsumerName,
		Subjects: []string{events.SubjectOf(events.TypeRestoreRecommended)},
	}
}

// RecommendationHandler keeps the restore.recommended events in a
// RecommendationStore: the newest revision per incident and claim,
// whatever order (or how many times) the events arrive in.
type RecommendationHandler struct {
	Store *RecommendationStore
	Log   *slog.Logger
	// Metrics, when set, counts the recommendations by result.
	Metrics *metrics.Metrics
}

// Handle is an events.Handler.
func (h *RecommendationHandler) Handle(ctx context.Context, ev events.Event) error {
	if ev.Type() != events.TypeRestoreRecommended {
		return events.Permanent(fmt.Errorf("unexpected event type %q", ev.Type()))
	}
	p, err := events.Decode[events.RestoreRecommended](ev)
	if err != nil {
		return err
	}
	if p.Namespace == "" || p.Incident == "" || p.PVC == "" || p.VolumeSnapshot == "" {
		return events.Permanent(fmt.Errorf("restore recommendation %s: namespace, incident, pvc and volume_snapshot are required", ev.ID()))
	}
	rec := Recommendation{
		Namespace: p.Namespace, Incident: p.Incident, PVC: p.PVC, VolumeSnapshot: p.VolumeSnapshot,
		Revision: max(p.Revision, 1), EventID: ev.ID(), At: ev.Time().UTC(),
	}
	kept, err := h.Store.Keep(ctx, rec)
	if err != nil {
		return err
	}
	if h.Metrics != nil {
		result := "superseded"
		if kept {
			result = "current"
		}
		h.Metrics.Recommendations.WithLabelValues(result).Inc()
	}
	h.Log.InfoContext(ctx, "restore recommendation", "event_id", ev.ID(), "namespace", p.Namespace, "incident", p.Incident,
		"pvc", p.PVC, "volume_snapshot", p.VolumeSnapshot, "revision", rec.Revision, "current", kept)
	return nil
}
