package slots

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/consistency"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
)

// EventRecorder records a Kubernetes Event on an object;
// k8s.io/client-go/tools/record.EventRecorder is one.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Taker takes the snapshots of slots and on-demand requests.
type Taker struct {
	Client client.Client
	Events events.Publisher
	Hooks  hooks.Executor
	Clock  clock.PassiveClock
	Log    *slog.Logger
	// Recorder records Kubernetes Events on policies; nil records none.
	Recorder EventRecorder
	Metrics  *metrics.Metrics
	// EncryptionTable is the table of documented driver encryption
	// parameters; nil means encryption.Documented.
	EncryptionTable []encryption.Driver
	// EncryptionAllow is the operator's allowlist (--encryption-allow).
	EncryptionAllow []encryption.Allow
}

// hooks is the hooks job (package consistency).
func (c *Taker) hooks() *consistency.Runner {
	return &consistency.Runner{Client: c.Client, Hooks: c.Hooks, Clock: c.Clock, Metrics: c.Metrics}
}

func (c *Taker) event(p *v1alpha1.SnapshotPolicy, typ, reason, message string) {
	if c.Recorder != nil {
		c.Recorder.Eventf(p, typ, reason, "%s", message)
	}
}

func (c *Taker) patchStatus(ctx context.Context, orig, p *v1alpha1.SnapshotPolicy) error {
	if err := c.Client.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}
