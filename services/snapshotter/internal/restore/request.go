package restore

import (
	"context"
	"fmt"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// ConsumerName is the durable consumer of restore requests.
const ConsumerName = "snapshotter-restores"

// Consumer is the consumer configuration of restore requests, on the
// DECISION stream.
func Consumer() events.ConsumerConfig {
	return events.ConsumerConfig{
		Stream:   events.StreamDecision,
		Name:     ConsumerName,
		Subjects: []string{events.SubjectOf(events.TypeRestoreRequested)},
	}
}

// Requests turns restore.requested events into Restores.
type Requests struct {
	Client client.Client
	Log    *slog.Logger
	// Namespace, when set, is the only namespace requests may name (the
	// snapshotter's --namespace).
	Namespace string
}

// Handle is an events.Handler: it creates the Restore of the request, named
// events.RestoreName(request_id). A request seen again (redelivered, or
// retried by the operator) finds its Restore and changes nothing. A request
// that cannot be carried out is dead-lettered with the reason.
func (h *Requests) Handle(ctx context.Context, ev events.Event) error {
	if ev.Type() != events.TypeRestoreRequested {
		return events.Permanent(fmt.Errorf("unexpected event type %q", ev.Type()))
	}
	req, err := events.Decode[events.RestoreRequested](ev)
	if err != nil {
		return err
	}
	r, err := ForRequest(req)
	if err != nil {
		return events.Permanent(fmt.Errorf("restore request %s (event %s): %w", req.RequestID, ev.ID(), err))
	}
	if h.Namespace != "" && r.Namespace != h.Namespace {
		return events.Permanent(fmt.Errorf("restore request %s: namespace %s is not watched by this snapshotter (it watches %s)", req.RequestID, r.Namespace, h.Namespace))
	}
	log := h.Log.With("event_id", ev.ID(), "namespace", r.Namespace, "restore", r.Name, "request_id", req.RequestID)
	if err := h.Client.Create(ctx, r); err != nil {
		if apierrors.IsAlreadyExists(err) {
			log.InfoContext(ctx, "restore request seen before: its Restore exists")
			return nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsNotFound(err) {
			return events.Permanent(fmt.Errorf("restore request %s: create Restore %s/%s: %w", req.RequestID, r.Namespace, r.Name, err))
		}
		return fmt.Errorf("create Restore %s/%s: %w", r.Namespace, r.Name, err)
	}
	log.InfoContext(ctx, "restore requested: Restore created", "pvc", req.PVC, "volume_snapshot", req.Snapshot, "incident", req.IncidentID, "actor", req.Actor)
	return nil
}

// ForRequest is the Restore a restore request asks for, or why there is
// none.
func ForRequest(req events.RestoreRequested) (*v1alpha1.Restore, error) {
	switch {
	case req.RequestID == "":
		return nil, fmt.Errorf("request_id is required")
	case req.Namespace == "":
		return nil, fmt.Errorf("namespace is required")
	case req.Snapshot == "" && req.IncidentID == "":
		return nil, fmt.Errorf("snapshot or incident_id is required (with only the incident, the Restore follows its current recommendation)")
	}
	for what, v := range map[string]string{"namespace": req.Namespace, "snapshot": req.Snapshot, "pvc": req.PVC} {
		if v == "" {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
			return nil, fmt.Errorf("%s %q: %v", what, v, errs)
		}
	}
	return &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: req.Namespace,
			Name:      events.RestoreName(req.RequestID),
			Labels:    map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy},
		},
		Spec: v1alpha1.RestoreSpec{
			VolumeSnapshot: req.Snapshot,
			PVC:            req.PVC,
			Incident:       req.IncidentID,
			RequestID:      req.RequestID,
			Actor:          req.Actor,
			Reason:         truncate(req.Reason, 1024),
		},
	}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
