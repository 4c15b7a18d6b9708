package observe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"k8s.io/utils/clock"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/expiry"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
	"github.com/stateguard/stateguard/services/certwatcher/internal/notify"
)

// Observer publishes certificate.observed for the records of a store.
type Observer struct {
	Store     *inventory.Store
	Publisher events.Publisher
	Context   notify.Context // nil outside Kubernetes: no users
	Clock     clock.PassiveClock
	Log       *slog.Logger
	// Ready, when set, holds observations back until it is true (the
	// informers have synced: before that a certificate's users are not
	// known yet, and an observation would list none).
	Ready func() bool

	mu   sync.Mutex
	last map[string]string // record ID → content id last published
}

// ContentID is the event id of an observation: a hash of where the
// certificate is, its serial and fingerprint, and its users. Days left and
// the observed time are left out, so the same certificate with the same
// users always has the same id.
func ContentID(p events.CertificateObserved) string {
	h := sha256.New()
	s := p.Source
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s", s.Namespace, s.Secret, s.Key, s.Path, p.Certificate.Serial, p.Certificate.SHA256)
	for _, group := range [][]events.ObjectRef{p.Users.Pods, p.Users.Workloads, p.Users.Ingresses} {
		h.Write([]byte{1})
		for _, r := range group {
			fmt.Fprintf(h, "\x02%s/%s/%s", r.Kind, r.Namespace, r.Name)
		}
	}
	return "certificate-observed-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// Changed is the publishing rule: an observation is published when no
// observation of the record was published yet (first sight, or the first
// pass after a start: the resync) or when its content id differs from the
// last one (a new serial, a user more or less).
func Changed(last map[string]string, recordID, contentID string) bool {
	prev, ok := last[recordID]
	return !ok || prev != contentID
}

// ObserveAll observes every record of the store (the resync), and forgets
// the records that are gone: one that comes back is a first sight again.
func (o *Observer) ObserveAll(ctx context.Context) error {
	recs := o.Store.All()
	ids := make(map[string]bool, len(recs))
	for _, r := range recs {
		ids[r.ID()] = true
	}
	o.mu.Lock()
	for id := range o.last {
		if !ids[id] {
			delete(o.last, id)
		}
	}
	o.mu.Unlock()
	return o.Observe(ctx, recs)
}

// Observe publishes the observations of recs that Changed. It goes on
// after a failure; what failed is published on the next pass.
func (o *Observer) Observe(ctx context.Context, recs []inventory.Record) error {
	if o.Ready != nil && !o.Ready() {
		return nil
	}
	now := o.Clock.Now()
	var errs []error
	for _, r := range recs {
		if len(r.Chain) == 0 {
			continue
		}
		leaf := r.Chain[0]
		p := events.CertificateObserved{
			Source: r.Source, Certificate: certinfo.Facts(leaf), DaysLeft: expiry.DaysLeft(leaf.NotAfter, now),
			ObservedAt: now.UTC(),
		}
		if o.Context != nil && r.Source.Secret != "" {
			p.Users = o.Context.Users(r.Source.Namespace, r.Source.Secret)
			p.CertManager = o.Context.CertManager(r.Source.Namespace, r.Source.Secret)
		}
		id := ContentID(p)
		o.mu.Lock()
		if o.last == nil {
			o.last = map[string]string{}
		}
		changed := Changed(o.last, r.ID(), id)
		o.mu.Unlock()
		if !changed {
			continue
		}
		ev, err := o.Publisher.NewEvent(events.TypeCertificateObserved, id, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("observed event: %w", err))
			continue
		}
		if err := o.Publisher.Publish(ctx, ev); err != nil {
			errs = append(errs, fmt.Errorf("publish observed event for %s/%s%s: %w", r.Source.Namespace, r.Source.Secret, r.Source.Path, err))
			continue
		}
		o.mu.Lock()
		o.last[r.ID()] = id
		o.mu.Unlock()
		o.Log.Info("certificate observed", "event_id", id, "namespace", r.Source.Namespace, "secret", r.Source.Secret,
			"path", r.Source.Path, "serial", p.Certificate.Serial, "pods", len(p.Users.Pods), "workloads", len(p.Users.Workloads))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}
