package pins

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
)

// ConsumerName is the durable consumer of pin requests.
const ConsumerName = "snapshotter-pins"

// Consumer is the consumer configuration of pin requests.
func Consumer() events.ConsumerConfig {
	return events.ConsumerConfig{
		Stream: events.StreamSnapshot,
		Name:   ConsumerName,
		Subjects: []string{
			events.SubjectOf(events.TypeSnapshotPinRequested),
			events.SubjectOf(events.TypeSnapshotUnpinRequested),
		},
	}
}

// Handler applies pin requests.
type Handler struct {
	Client  client.Client
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// Handle is an events.Handler.
func (h *Handler) Handle(ctx context.Context, ev events.Event) error {
	var ns, name, reason string
	var pin bool
	switch ev.Type() {
	case events.TypeSnapshotPinRequested:
		req, err := events.Decode[events.SnapshotPinRequested](ev)
		if err != nil {
			return err
		}
		ns, name, reason, pin = req.Namespace, req.VolumeSnapshot, req.Reason, true
	case events.TypeSnapshotUnpinRequested:
		req, err := events.Decode[events.SnapshotUnpinRequested](ev)
		if err != nil {
			return err
		}
		ns, name, reason = req.Namespace, req.VolumeSnapshot, req.Reason
	default:
		return events.Permanent(fmt.Errorf("unexpected event type %q", ev.Type()))
	}
	if ns == "" || name == "" {
		return events.Permanent(fmt.Errorf("event %s: namespace and volume_snapshot are required", ev.ID()))
	}
	action := "unpin"
	if pin {
		action = "pin"
	}
	at := ev.Time().UTC()
	log := h.Log.With("event_id", ev.ID(), "namespace", ns, "volume_snapshot", name, "action", action)

	var vs snapv1.VolumeSnapshot
	if err := h.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &vs); err != nil {
		if apierrors.IsNotFound(err) {
			return events.Permanent(fmt.Errorf("%s %s/%s: volume snapshot not found", action, ns, name))
		}
		return fmt.Errorf("get volume snapshot: %w", err)
	}
	if prev, err := time.Parse(time.RFC3339Nano, vs.Annotations[v1alpha1.AnnotationPinUpdatedAt]); err == nil && !at.After(prev) {
		log.InfoContext(ctx, "ignoring pin request not newer than the one applied", "event_time", at, "applied_time", prev)
		h.count(action, "stale")
		return nil
	}
	if vs.Labels == nil {
		vs.Labels = map[string]string{}
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	if pin {
		vs.Labels[v1alpha1.LabelPinned] = "true"
		vs.Annotations[v1alpha1.AnnotationPinnedReason] = reason
	} else {
		delete(vs.Labels, v1alpha1.LabelPinned)
		delete(vs.Annotations, v1alpha1.AnnotationPinnedReason)
	}
	vs.Annotations[v1alpha1.AnnotationPinUpdatedAt] = at.Format(time.RFC3339Nano)
	// Update carries the resourceVersion: a concurrent change makes it fail
	// with a conflict, and the redelivery decides again on fresh data.
	if err := h.Client.Update(ctx, &vs); err != nil {
		return fmt.Errorf("%s %s/%s: %w", action, ns, name, err)
	}
	log.InfoContext(ctx, "pin request applied", "reason", reason, "event_time", at)
	h.count(action, "applied")
	return nil
}

func (h *Handler) count(action, result string) {
	if h.Metrics != nil {
		h.Metrics.Pins.WithLabelValues(action, result).Inc()
	}
}
