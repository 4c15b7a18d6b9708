package slots

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
)

// maxRequestSkew bounds how far in the future a request's time may be (the
// clocks of the requester and the snapshotter differ a little).
const maxRequestSkew = 5 * time.Minute

// Reasons of the Events an on-demand request records on its policy.
const (
	reasonSnapshotRequested = "SnapshotRequested"
	reasonRequestRefused    = "SnapshotRequestRefused"
)

// parseSnapshotRequest reads a stateguard.io/snapshot-request value,
// "<pvc>@<RFC 3339 time>": the PVC to snapshot and the time that becomes
// the snapshot's slot (and so its name). A time later than now plus
// maxRequestSkew is refused: it would name a snapshot after a slot that has
// not come.
func parseSnapshotRequest(v string, now time.Time) (string, time.Time, error) {
	pvc, ts, ok := strings.Cut(v, "@")
	if !ok {
		return "", time.Time{}, fmt.Errorf("%q: want <pvc>@<RFC 3339 time>", v)
	}
	if errs := validation.IsDNS1123Subdomain(pvc); len(errs) > 0 {
		return "", time.Time{}, fmt.Errorf("%q: the PVC name: %s", v, strings.Join(errs, "; "))
	}
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%q: the time: %w", v, err)
	}
	if at.After(now.Add(maxRequestSkew)) {
		return "", time.Time{}, fmt.Errorf("%q: the time is more than %s after now (%s)", v, maxRequestSkew, now.UTC().Format(time.RFC3339))
	}
	return pvc, at.UTC(), nil
}

// OnDemand carries out p's snapshot request, once per value: the PVC,
// which p must select, is snapshotted as in a slot at the request's time
// (hooks, labels, workloads, deterministic name; the report and retention
// treat it like any other), and status.lastRequest records the value with
// the snapshot or why it was refused. An error (the API server, say)
// leaves the request to the next pass, which finds the snapshot taken
// already if it was.
func (c *Taker) OnDemand(ctx context.Context, p *v1alpha1.SnapshotPolicy, spec policy.Spec) error {
	req := p.Annotations[v1alpha1.AnnotationSnapshotRequest]
	if req == "" || p.Status.LastRequest != nil && p.Status.LastRequest.Request == req {
		return nil
	}
	out := v1alpha1.SnapshotRequestStatus{Request: req}
	name, refused, err := c.takeRequested(ctx, p, spec, req)
	if err != nil {
		return err
	}
	log := c.Log.With("namespace", p.Namespace, "policy", p.Name, "request", req)
	if refused != nil {
		out.Error = refused.Error()
		log.Warn("on-demand snapshot refused", "reason", out.Error)
		c.event(p, corev1.EventTypeWarning, reasonRequestRefused, fmt.Sprintf("request %s refused: %s", req, out.Error))
	} else {
		out.Snapshot = name
		log.Info("on-demand snapshot taken", "volume_snapshot", name)
		c.event(p, corev1.EventTypeNormal, reasonSnapshotRequested, fmt.Sprintf("request %s: volume snapshot %s", req, name))
	}
	orig := p.DeepCopy()
	p.Status.LastRequest = &out
	if name != "" {
		p.Status.LastSnapshot = name
	}
	return c.patchStatus(ctx, orig, p)
}

// takeRequested takes the snapshot req asks for. It returns its name, or
// why the request is refused for good, or an error to retry.
func (c *Taker) takeRequested(ctx context.Context, p *v1alpha1.SnapshotPolicy, spec policy.Spec, req string) (string, error, error) {
	pvcName, at, err := parseSnapshotRequest(req, c.Clock.Now())
	if err != nil {
		return "", err, nil
	}
	var pvc corev1.PersistentVolumeClaim
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: pvcName}, &pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("PVC %s/%s does not exist", p.Namespace, pvcName), nil
		}
		return "", nil, fmt.Errorf("get pvc %s: %w", pvcName, err)
	}
	if !spec.Selector.Matches(labels.Set(pvc.Labels)) {
		return "", fmt.Errorf("PVC %s is not selected by the policy's pvcSelector (%s)", pvcName, spec.Selector), nil
	}
	name, finding, err := c.takeSnapshot(ctx, p, spec, &pvc, at)
	switch {
	case errors.Is(err, ErrHookFailed):
		return "", errors.New("a pre hook failed (snapshot.failed was published)"), nil
	case errors.Is(err, ErrNotEncrypted):
		return "", fmt.Errorf("the policy requires encryption at rest and the claim's is %s (snapshot.failed was published): %s", finding.Status, strings.Join(finding.Evidence, "; ")), nil
	case err != nil:
		return "", nil, err
	}
	return name, nil, nil
}
