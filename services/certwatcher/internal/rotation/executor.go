package rotation

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
)

// Annotations read by the executor.
const (
	// CASecretAnnotation on a TLS Secret names the in-cluster CA Secret
	// (namespace/name, holding tls.crt and tls.key) that signs it.
	CASecretAnnotation = "stateguard.io/ca-secret"
	// OptOutAnnotation with value "disabled" on a Secret or its Namespace
	// stops rotation.
	OptOutAnnotation = "stateguard.io/rotation"
	// CertificateNameAnnotation is set by cert-manager on the Secrets it
	// writes.
	CertificateNameAnnotation = "cert-manager.io/certificate-name"
)

// Methods reported in events.CertificateRotated.Method.
const (
	MethodCertManager = "cert-manager"
	MethodInClusterCA = "in-cluster-ca"
)

// Events publishes and consumes events.
type Events interface {
	NewEvent(typ, id string, payload any) (events.Event, error)
	Publish(ctx context.Context, evs ...events.Event) error
	Consume(ctx context.Context, cfg events.ConsumerConfig, h events.Handler) (*events.Subscription, error)
}

// Marks stores the progress of requests.
type Marks interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
}

// Options configure an Executor.
type Options struct {
	Client      kubernetes.Interface
	Dynamic     dynamic.Interface
	CertManager bool // cert-manager's Certificate CRD is served
	// CertManagerServed, when set, is asked instead of CertManager, for a
	// CRD that may appear while certwatcher runs.
	CertManagerServed func() bool
	Events            Events
	Marks             Marks
	Log               *slog.Logger
	Clock             clock.Clock
	DryRun            bool
	// Rate and Burst bound rotations (per second, and at once).
	Rate  float64
	Burst int
	// ReissueTimeout bounds the wait for cert-manager's new certificate;
	// RolloutTimeout the wait for rollouts; VerifyTimeout each TLS dial.
	ReissueTimeout time.Duration
	RolloutTimeout time.Duration
	VerifyTimeout  time.Duration
	// PollInterval is how often progress is checked (default 1s).
	PollInterval time.Duration
	// ServiceAddress returns host:port to dial for a Service port; the
	// default is the cluster DNS name <svc>.<ns>.svc:<port>.
	ServiceAddress func(svc *corev1.Service, port corev1.ServicePort) string
}

// Executor carries out rotation requests.
type Executor struct {
	o       Options
	limiter *rate.Limiter
}

// New returns an Executor.
func New(o Options) (*Executor, error) {
	if o.Client == nil || o.Events == nil || o.Marks == nil || o.Log == nil {
		return nil, errors.New("rotation: client, events, marks and log are required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Rate <= 0 {
		o.Rate = 0.1
	}
	o.Burst = max(o.Burst, 1)
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.ReissueTimeout <= 0 {
		o.ReissueTimeout = 5 * time.Minute
	}
	if o.RolloutTimeout <= 0 {
		o.RolloutTimeout = 5 * time.Minute
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 5 * time.Second
	}
	if o.ServiceAddress == nil {
		o.ServiceAddress = func(s *corev1.Service, p corev1.ServicePort) string {
			return net.JoinHostPort(s.Name+"."+s.Namespace+".svc", strconv.Itoa(int(p.Port)))
		}
	}
	return &Executor{o: o, limiter: rate.NewLimiter(rate.Limit(o.Rate), o.Burst)}, nil
}

// Consume starts the durable consumer of rotation requests.
func (e *Executor) Consume(ctx context.Context, name string, ackWait time.Duration) (*events.Subscription, error) {
	return e.o.Events.Consume(ctx, ConsumerConfig(name, ackWait), e.Handle)
}

// ConsumerConfig is the durable consumer of rotation requests (the
// bootstrap subcommand creates it).
func ConsumerConfig(name string, ackWait time.Duration) events.ConsumerConfig {
	return events.ConsumerConfig{
		Stream:        events.StreamCertificate,
		Name:          name,
		Subjects:      []string{events.SubjectOf(events.TypeCertificateRotationRequest)},
		AckWait:       ackWait,
		MaxDeliver:    20,
		MaxAckPending: 1,
	}
}

// Phases of a request, kept in the KV bucket.
const (
	phaseNew     = ""        // nothing done yet
	phaseIssuing = "issuing" // re-issuance started; OldSerial known
	phaseIssued  = "issued"  // the Secret holds NewSerial; rolling next
	phaseDone    = "done"    // an outcome event was published
)

type progress struct {
	Phase       string `json:"phase"`
	Method      string `json:"method,omitempty"`
	OldSerial   string `json:"old_serial,omitempty"`
	NewSerial   string `json:"new_serial,omitempty"`
	RestartedAt string `json:"restarted_at,omitempty"`
	EventID     string `json:"event_id,omitempty"`
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func progressKey(requestID string) string { return "rotation." + digest(requestID) }

// RotatedEventID and FailedEventID are the deterministic ids of a request's
// outcome events.
func RotatedEventID(requestID string) string { return "certificate-rotated-" + digest(requestID) }

// FailedEventID is the id of the failure event of a request.
func FailedEventID(requestID string) string {
	return "certificate-rotation-failed-" + digest(requestID)
}

// errDeclined marks a request that is answered with rotation.failed.
type errDeclined struct{ reason string }

func (e *errDeclined) Error() string { return e.reason }

func declined(format string, args ...any) error {
	return &errDeclined{reason: fmt.Sprintf(format, args...)}
}

// Handle is the events.Handler for rotation requests.
func (e *Executor) Handle(ctx context.Context, ev events.Event) error {
	req, err := events.Decode[events.CertificateRotationRequested](ev)
	if err != nil {
		return err
	}
	if req.RequestID == "" {
		req.RequestID = ev.ID()
	}
	if req.Namespace == "" || req.Secret == "" {
		return events.Permanent(errors.New("rotation request without namespace or secret"))
	}
	log := e.o.Log.With("request_id", req.RequestID, "namespace", req.Namespace, "secret", req.Secret)
	key := progressKey(req.RequestID)
	p, err := e.load(ctx, key)
	if err != nil {
		return err
	}
	if p.Phase == phaseDone {
		log.InfoContext(ctx, "rotation request already handled", "event_id", p.EventID)
		return nil
	}
	err = e.rotate(ctx, log, req, key, &p)
	var d *errDeclined
	if errors.As(err, &d) {
		log.WarnContext(ctx, "rotation not carried out", "reason", d.reason)
		return e.finish(ctx, key, &p, events.TypeCertificateRotationFailed, FailedEventID(req.RequestID), events.CertificateRotationFailed{
			RequestID: req.RequestID, Namespace: req.Namespace, Secret: req.Secret, Reason: d.reason, Causes: req.Causes,
		})
	}
	return err
}

func (e *Executor) load(ctx context.Context, key string) (progress, error) {
	var p progress
	b, err := e.o.Marks.Get(ctx, key)
	if err != nil || b == nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return progress{}, fmt.Errorf("rotation progress %s: %w", key, err)
	}
	return p, nil
}

func (e *Executor) save(ctx context.Context, key string, p progress) error {
	b, _ := json.Marshal(p)
	return e.o.Marks.Put(ctx, key, b)
}

func (e *Executor) finish(ctx context.Context, key string, p *progress, typ, id string, payload any) error {
	ev, err := e.o.Events.NewEvent(typ, id, payload)
	if err != nil {
		return events.Permanent(err)
	}
	if err := e.o.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish %s: %w", typ, err)
	}
	p.Phase, p.EventID = phaseDone, id
	return e.save(ctx, key, *p)
}

// target is a request's Secret as read at the start of an attempt.
type target struct {
	secret *corev1.Secret
	serial string // of the certificate it holds; "" when unreadable
}

// rotate carries out a request from the phase its progress records, one
// phase after the other: new (the rate limit, then the serial to replace
// is saved) → issuing (the Issuer gets a new certificate into the Secret)
// → issued (the workloads are rolled and the served certificate verified)
// → done (finish). Each phase is saved before the next starts, so a
// redelivered request resumes where it stopped and never issues twice.
func (e *Executor) rotate(ctx context.Context, log *slog.Logger, req events.CertificateRotationRequested, key string, p *progress) error {
	t, err := e.target(ctx, req)
	if err != nil {
		return err
	}
	iss, err := e.chooseIssuer(ctx, t, p)
	if err != nil {
		return err
	}
	ws, err := findWorkloads(ctx, e.o.Client, req.Namespace, req.Secret)
	if err != nil {
		return err
	}
	if e.o.DryRun || req.DryRun {
		method := p.Method
		if p.Phase == phaseNew {
			method = iss.Name()
		}
		return e.dryRun(ctx, log, req, key, p, method, t.serial, ws)
	}
	for {
		switch p.Phase {
		case phaseNew:
			if err := e.begin(ctx, key, p, iss.Name(), t.serial); err != nil {
				return err
			}
		case phaseIssuing:
			if err := e.issue(ctx, log, key, p, iss, t); err != nil {
				return err
			}
		default: // phaseIssued
			out, rolled, err := e.roll(ctx, log, req, p, ws)
			if err != nil {
				return err
			}
			out.Verification = e.verifyRollout(ctx, log, req.Namespace, rolled, p.NewSerial)
			log.InfoContext(ctx, "certificate rotated", "new_serial", p.NewSerial, "rolled", len(out.Rolled), "paused", len(out.Paused),
				"verified", out.Verification.Checked, "match", out.Verification.Match)
			return e.finish(ctx, key, p, events.TypeCertificateRotated, RotatedEventID(req.RequestID), out)
		}
	}
}

// target reads the request's Secret and applies the policy (shouldRotate).
func (e *Executor) target(ctx context.Context, req events.CertificateRotationRequested) (target, error) {
	cs := e.o.Client
	secret, err := cs.CoreV1().Secrets(req.Namespace).Get(ctx, req.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return target{}, declined("secret %s/%s not found", req.Namespace, req.Secret)
	}
	if err != nil {
		return target{}, fmt.Errorf("get secret: %w", err)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, req.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		ns = nil
	case err != nil:
		return target{}, fmt.Errorf("get namespace: %w", err)
	}
	if ok, reason := shouldRotate(ns, secret); !ok {
		return target{}, declined("%s", reason)
	}
	t := target{secret: secret}
	if cur, err := certinfo.Parse(secret.Data[corev1.TLSCertKey]); err == nil {
		t.serial = certinfo.SerialHex(cur.Leaf())
	}
	return t, nil
}

// shouldRotate is the rotation policy: a Secret is rotated unless it, or
// its Namespace (nil when there is none), opts out with the annotation
// stateguard.io/rotation=disabled. It says why not.
func shouldRotate(ns *corev1.Namespace, secret *corev1.Secret) (ok bool, reason string) {
	if ns != nil && optedOut(ns.Annotations) {
		return false, fmt.Sprintf("rotation disabled by annotation %s=disabled on namespace %s", OptOutAnnotation, ns.Name)
	}
	if optedOut(secret.Annotations) {
		return false, fmt.Sprintf("rotation disabled by annotation %s=disabled on the secret", OptOutAnnotation)
	}
	return true, ""
}

// chooseIssuer returns the request's Issuer: chosen now for a new request
// (an in-cluster CA cannot re-issue a certificate it cannot read), the one
// chosen before for a request issuing, none once issued.
func (e *Executor) chooseIssuer(ctx context.Context, t target, p *progress) (Issuer, error) {
	switch p.Phase {
	case phaseNew:
		iss, err := e.issuer(ctx, t.secret)
		if err != nil {
			return nil, err
		}
		if iss.Name() == MethodInClusterCA && t.serial == "" {
			_, perr := certinfo.Parse(t.secret.Data[corev1.TLSCertKey])
			return nil, declined("%s of the secret is unreadable: %v", corev1.TLSCertKey, errOr(perr, "no certificate"))
		}
		return iss, nil
	case phaseIssuing:
		return e.resumedIssuer(ctx, t.secret, p.Method)
	}
	return nil, nil
}

// dryRun reports what the rotation would do and changes nothing.
func (e *Executor) dryRun(ctx context.Context, log *slog.Logger, req events.CertificateRotationRequested, key string, p *progress, method, serial string, ws []workload) error {
	out := events.CertificateRotated{RequestID: req.RequestID, Namespace: req.Namespace, Secret: req.Secret, Method: method,
		OldSerial: serial, DryRun: true, Causes: req.Causes,
		Verification: events.TLSVerification{Error: "dry run: nothing changed"}}
	for _, w := range ws {
		if w.paused {
			out.Paused = append(out.Paused, w.ref)
		} else {
			out.Rolled = append(out.Rolled, w.ref)
		}
	}
	log.InfoContext(ctx, "dry run: rotation would be carried out", "method", method, "workloads", len(ws))
	return e.finish(ctx, key, p, events.TypeCertificateRotated, RotatedEventID(req.RequestID), out)
}

// begin starts a new request: the rate limit, then the issuing phase with
// the method and the serial to replace.
func (e *Executor) begin(ctx context.Context, key string, p *progress, method, serial string) error {
	if err := e.wait(ctx); err != nil {
		return err
	}
	*p = progress{Phase: phaseIssuing, Method: method, OldSerial: serial}
	return e.save(ctx, key, *p)
}

// issue gets a new certificate into the Secret — or finds the one issued
// before a restart — and moves to the issued phase.
func (e *Executor) issue(ctx context.Context, log *slog.Logger, key string, p *progress, iss Issuer, t target) error {
	newSerial := t.serial // issued before a restart
	if t.serial == "" || t.serial == p.OldSerial {
		var err error
		if newSerial, err = iss.Issue(ctx, log, t.secret, p.OldSerial); err != nil {
			return err
		}
	}
	p.Phase, p.NewSerial = phaseIssued, newSerial
	p.RestartedAt = e.o.Clock.Now().UTC().Format(time.RFC3339)
	if err := e.save(ctx, key, *p); err != nil {
		return err
	}
	log.InfoContext(ctx, "certificate re-issued", "method", p.Method, "old_serial", p.OldSerial, "new_serial", newSerial)
	return nil
}

// roll restarts the workloads that mount the Secret the way `kubectl
// rollout restart` does (with the restart time saved in the progress, so a
// second attempt changes nothing), leaving paused ones alone.
func (e *Executor) roll(ctx context.Context, log *slog.Logger, req events.CertificateRotationRequested, p *progress, ws []workload) (events.CertificateRotated, []workload, error) {
	out := events.CertificateRotated{RequestID: req.RequestID, Namespace: req.Namespace, Secret: req.Secret, Method: p.Method,
		OldSerial: p.OldSerial, NewSerial: p.NewSerial, Causes: req.Causes}
	var rolled []workload
	for _, w := range ws {
		if w.paused {
			out.Paused = append(out.Paused, w.ref)
			log.WarnContext(ctx, "paused rollout left alone", "kind", w.ref.Kind, "workload", w.ref.Name)
			continue
		}
		if err := roll(ctx, e.o.Client, w, p.RestartedAt); err != nil {
			return out, nil, err
		}
		rolled = append(rolled, w)
		out.Rolled = append(out.Rolled, w.ref)
	}
	return out, rolled, nil
}

// verifyRollout waits (bounded) for the rollouts, then checks which
// certificate the Services serve; a rollout not done in time is reported
// in the verification, not as an error.
func (e *Executor) verifyRollout(ctx context.Context, log *slog.Logger, namespace string, rolled []workload, newSerial string) events.TLSVerification {
	pending := e.waitRollouts(ctx, rolled)
	v := e.verify(ctx, namespace, rolled, newSerial)
	if len(pending) > 0 {
		msg := "rollout not complete within " + e.o.RolloutTimeout.String() + ": " + strings.Join(pending, ", ")
		log.WarnContext(ctx, "rollout not complete; reporting", "pending", pending)
		if v.Error == "" {
			v.Error = msg
		} else {
			v.Error = msg + "; " + v.Error
		}
	}
	return v
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func optedOut(ann map[string]string) bool {
	return strings.EqualFold(strings.TrimSpace(ann[OptOutAnnotation]), "disabled")
}

// wait applies the rate limit: a short wait happens here, a long one is a
// redelivery later.
func (e *Executor) wait(ctx context.Context) error {
	r := e.limiter.ReserveN(e.o.Clock.Now(), 1)
	delay := r.DelayFrom(e.o.Clock.Now())
	if delay == 0 {
		return nil
	}
	if delay > 30*time.Second {
		r.CancelAt(e.o.Clock.Now())
		return events.RetryAfter(errors.New("rotation rate limit"), delay)
	}
	select {
	case <-ctx.Done():
		r.CancelAt(e.o.Clock.Now())
		return ctx.Err()
	case <-e.o.Clock.After(delay):
		return nil
	}
}

// poll checks cond every PollInterval until it holds or timeout passes.
func (e *Executor) poll(ctx context.Context, timeout time.Duration, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, e.o.PollInterval, timeout, true, cond)
}

// waitRollouts waits up to RolloutTimeout and returns the workloads whose
// rollout did not complete.
func (e *Executor) waitRollouts(ctx context.Context, ws []workload) []string {
	if len(ws) == 0 {
		return nil
	}
	pending := map[string]events.WorkloadRef{}
	for _, w := range ws {
		pending[w.ref.Kind+"/"+w.ref.Name] = w.ref
	}
	_ = e.poll(ctx, e.o.RolloutTimeout, func(ctx context.Context) (bool, error) {
		for k, ref := range pending {
			done, err := rolledOut(ctx, e.o.Client, ref)
			if err == nil && done {
				delete(pending, k)
			}
		}
		return len(pending) == 0, nil
	})
	var out []string
	for k := range pending {
		out = append(out, k)
	}
	return out
}

// verify dials the Services that select the rolled workloads and compares
// the served certificate's serial with the new one. Best effort: an
// unreachable Service is reported, not an error.
func (e *Executor) verify(ctx context.Context, namespace string, ws []workload, newSerial string) events.TLSVerification {
	svcs, err := servicesFor(ctx, e.o.Client, namespace, ws)
	if err != nil {
		return events.TLSVerification{Error: err.Error()}
	}
	if len(svcs) == 0 {
		return events.TLSVerification{Error: "no Service selects the rolled workloads"}
	}
	var errs []string
	for i := range svcs {
		s := &svcs[i]
		for _, port := range s.Spec.Ports {
			if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
				continue
			}
			addr := e.o.ServiceAddress(s, port)
			serial, err := servedSerial(ctx, addr, e.o.VerifyTimeout)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s:%d: %v", s.Name, port.Port, err))
				continue
			}
			return events.TLSVerification{Checked: true, Service: s.Name, Port: int(port.Port), ServedSerial: serial, Match: serial == newSerial}
		}
	}
	return events.TLSVerification{Error: "no Service port served TLS: " + strings.Join(errs, "; ")}
}

func servedSerial(ctx context.Context, addr string, timeout time.Duration) (string, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		// Only the serial is compared; trust is not the question here.
		InsecureSkipVerify: true, //nolint:gosec // identification, not authentication
		MinVersion:         tls.VersionTLS12,
	}}
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("no certificate served")
	}
	return certinfo.SerialHex(certs[0]), nil
}
