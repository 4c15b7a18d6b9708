package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"k8s.io/utils/clock"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/expiry"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

// Weak is the pseudo-threshold reported, once, for a certificate that is
// not near expiry but has weaknesses (small RSA key, SHA-1 signature).
const Weak = "weak"

// Marks remembers reported thresholds.
type Marks interface {
	Has(ctx context.Context, key string) (bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// Context adds what certwatcher knows about a Secret besides its data.
type Context interface {
	Users(namespace, secret string) events.CertificateUsers
	CertManager(namespace, secret string) *events.CertManagerInfo
}

// Notifier decides and publishes expiry events.
type Notifier struct {
	Store      *inventory.Store
	Thresholds []expiry.Threshold
	Marks      Marks
	Publisher  events.Publisher
	Context    Context // nil outside Kubernetes
	Clock      clock.PassiveClock
	Log        *slog.Logger
}

// EvaluateAll checks every known certificate.
func (n *Notifier) EvaluateAll(ctx context.Context) error {
	return n.Evaluate(ctx, n.Store.All())
}

// Evaluate checks recs and publishes what is due. It goes on after a
// failure and returns the errors joined; what failed is tried again on the
// next evaluation.
func (n *Notifier) Evaluate(ctx context.Context, recs []inventory.Record) error {
	now := n.Clock.Now()
	var errs []error
	for _, r := range recs {
		for _, c := range r.Chain {
			if err := n.evaluateCert(ctx, r, c, now); err != nil {
				errs = append(errs, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return errors.Join(errs...)
}

func (n *Notifier) evaluateCert(ctx context.Context, r inventory.Record, c *x509.Certificate, now time.Time) error {
	key := expiry.Key{Source: r.Source, Serial: certinfo.SerialHex(c)}
	var lookupErr error
	reported := func(th expiry.Threshold) bool {
		ok, err := n.Marks.Has(ctx, expiry.MarkKey(key, th))
		if err != nil {
			lookupErr = err
			return true // unsure: do not report now, try again later
		}
		return ok
	}
	d := expiry.Due(c.NotAfter, now, n.Thresholds, reported)
	if lookupErr != nil {
		return lookupErr
	}
	weaknesses := certinfo.Weaknesses(c, now)
	if d.Fire.Name == "" {
		weak := expiry.Threshold{Name: Weak}
		if !hasStructuralWeakness(weaknesses) || reported(weak) {
			return lookupErr
		}
		d = expiry.Decision{Fire: weak, Mark: []expiry.Threshold{weak}}
	}
	p := events.CertificateExpiring{
		Source:      r.Source,
		Threshold:   d.Fire.Name,
		DaysLeft:    expiry.DaysLeft(c.NotAfter, now),
		Certificate: certinfo.Facts(c),
		Weaknesses:  weaknesses,
	}
	if len(r.Chain) > 1 {
		for _, cc := range r.Chain {
			p.Chain = append(p.Chain, certinfo.Facts(cc))
		}
	}
	if n.Context != nil && r.Source.Secret != "" {
		p.Users = n.Context.Users(r.Source.Namespace, r.Source.Secret)
		p.CertManager = n.Context.CertManager(r.Source.Namespace, r.Source.Secret)
	}
	ev, err := n.Publisher.NewEvent(events.TypeCertificateExpiring, expiry.EventID(key, d.Fire), p)
	if err != nil {
		return fmt.Errorf("expiring event: %w", err)
	}
	if err := n.Publisher.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish expiring event for %s: %w", key, err)
	}
	n.Log.Info("certificate expiring event published", "event_id", ev.ID(), "threshold", d.Fire.Name,
		"namespace", r.Source.Namespace, "secret", r.Source.Secret, "key", r.Source.Key, "path", r.Source.Path,
		"serial", key.Serial, "days_left", p.DaysLeft)
	for _, th := range d.Mark {
		if err := n.Marks.Put(ctx, expiry.MarkKey(key, th), []byte(ev.ID())); err != nil {
			return err
		}
	}
	return nil
}

func hasStructuralWeakness(w []string) bool {
	return slices.Contains(w, certinfo.WeakRSAKey) || slices.Contains(w, certinfo.WeakSHA1) || slices.Contains(w, certinfo.WeakMD5)
}
