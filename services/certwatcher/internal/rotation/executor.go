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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/discovery"
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

func (e *Executor) rotate(ctx context.Context, log *slog.Logger, req events.CertificateRotationRequested, key string, p *progress) error {
	cs := e.o.Client
	secret, err := cs.CoreV1().Secrets(req.Namespace).Get(ctx, req.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return declined("secret %s/%s not found", req.Namespace, req.Secret)
	}
	if err != nil {
		return fmt.Errorf("get secret: %w", err)
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, req.Namespace, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get namespace: %w", err)
	}
	if err == nil && optedOut(ns.Annotations) {
		return declined("rotation disabled by annotation %s=disabled on namespace %s", OptOutAnnotation, req.Namespace)
	}
	if optedOut(secret.Annotations) {
		return declined("rotation disabled by annotation %s=disabled on the secret", OptOutAnnotation)
	}
	cur, err := certinfo.Parse(secret.Data[corev1.TLSCertKey])
	curSerial := ""
	if err == nil {
		curSerial = certinfo.SerialHex(cur.Leaf())
	}

	// The method is decided once; a resumed request keeps it.
	method := p.Method
	var certificate *unstructured.Unstructured
	if p.Phase == "" || (p.Phase == phaseIssuing && p.Method == MethodCertManager) {
		m, crt, err := e.method(ctx, secret)
		if err != nil {
			return err
		}
		if p.Phase == "" {
			method = m
		}
		certificate = crt
	}
	if p.Phase == "" && method == MethodInClusterCA && curSerial == "" {
		_, perr := certinfo.Parse(secret.Data[corev1.TLSCertKey])
		return declined("%s of the secret is unreadable: %v", corev1.TLSCertKey, errOr(perr, "no certificate"))
	}
	ws, err := findWorkloads(ctx, cs, req.Namespace, req.Secret)
	if err != nil {
		return err
	}

	if e.o.DryRun || req.DryRun {
		out := events.CertificateRotated{RequestID: req.RequestID, Namespace: req.Namespace, Secret: req.Secret, Method: method,
			OldSerial: curSerial, DryRun: true, Causes: req.Causes,
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

	if p.Phase == "" {
		if err := e.wait(ctx); err != nil {
			return err
		}
		*p = progress{Phase: phaseIssuing, Method: method, OldSerial: curSerial}
		if err := e.save(ctx, key, *p); err != nil {
			return err
		}
	}
	if p.Phase == phaseIssuing {
		newSerial := ""
		if curSerial != "" && curSerial != p.OldSerial {
			newSerial = curSerial // issued before a restart
		} else {
			switch p.Method {
			case MethodCertManager:
				newSerial, err = e.renewCertManager(ctx, log, req, certificate, p.OldSerial)
			case MethodInClusterCA:
				newSerial, err = e.reissueWithCA(ctx, log, secret)
			}
			if err != nil {
				return err
			}
		}
		p.Phase, p.NewSerial = phaseIssued, newSerial
		p.RestartedAt = e.o.Clock.Now().UTC().Format(time.RFC3339)
		if err := e.save(ctx, key, *p); err != nil {
			return err
		}
		log.InfoContext(ctx, "certificate re-issued", "method", p.Method, "old_serial", p.OldSerial, "new_serial", newSerial)
	}

	out := events.CertificateRotated{RequestID: req.RequestID, Namespace: req.Namespace, Secret: req.Secret, Method: p.Method,
		OldSerial: p.OldSerial, NewSerial: p.NewSerial, Causes: req.Causes}
	var rolled []workload
	for _, w := range ws {
		if w.paused {
			out.Paused = append(out.Paused, w.ref)
			log.WarnContext(ctx, "paused rollout left alone", "kind", w.ref.Kind, "workload", w.ref.Name)
			continue
		}
		if err := roll(ctx, cs, w, p.RestartedAt); err != nil {
			return err
		}
		rolled = append(rolled, w)
		out.Rolled = append(out.Rolled, w.ref)
	}
	pending := e.waitRollouts(ctx, rolled)
	out.Verification = e.verify(ctx, req.Namespace, rolled, p.NewSerial)
	if len(pending) > 0 {
		msg := "rollout not complete within " + e.o.RolloutTimeout.String() + ": " + strings.Join(pending, ", ")
		log.WarnContext(ctx, "rollout not complete; reporting", "pending", pending)
		if out.Verification.Error == "" {
			out.Verification.Error = msg
		} else {
			out.Verification.Error = msg + "; " + out.Verification.Error
		}
	}
	log.InfoContext(ctx, "certificate rotated", "new_serial", p.NewSerial, "rolled", len(out.Rolled), "paused", len(out.Paused),
		"verified", out.Verification.Checked, "match", out.Verification.Match)
	return e.finish(ctx, key, p, events.TypeCertificateRotated, RotatedEventID(req.RequestID), out)
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

// method decides how the Secret can be re-issued.
func (e *Executor) method(ctx context.Context, s *corev1.Secret) (string, *unstructured.Unstructured, error) {
	certManager := e.o.CertManager
	if e.o.CertManagerServed != nil {
		certManager = e.o.CertManagerServed()
	}
	if certManager && e.o.Dynamic != nil {
		crt, err := e.findCertificate(ctx, s)
		if err != nil {
			return "", nil, err
		}
		if crt != nil {
			return MethodCertManager, crt, nil
		}
	}
	if s.Annotations[CASecretAnnotation] != "" {
		return MethodInClusterCA, nil, nil
	}
	if s.Annotations[CertificateNameAnnotation] != "" {
		return "", nil, declined("the secret names cert-manager Certificate %q, which does not exist", s.Annotations[CertificateNameAnnotation])
	}
	return "", nil, declined("no way to re-issue: not managed by cert-manager and no %s annotation names an in-cluster CA", CASecretAnnotation)
}

func (e *Executor) findCertificate(ctx context.Context, s *corev1.Secret) (*unstructured.Unstructured, error) {
	crts := e.o.Dynamic.Resource(discovery.CertificateGVR).Namespace(s.Namespace)
	if name := s.Annotations[CertificateNameAnnotation]; name != "" {
		crt, err := crts.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return crt, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get certificate %s: %w", name, err)
		}
	}
	list, err := crts.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	for i := range list.Items {
		if sn, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "secretName"); sn == s.Name {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// renewCertManager sets the Issuing condition as `cmctl renew` does and
// waits until the Secret holds a certificate with another serial.
func (e *Executor) renewCertManager(ctx context.Context, log *slog.Logger, req events.CertificateRotationRequested, crt *unstructured.Unstructured, oldSerial string) (string, error) {
	if crt == nil {
		return "", declined("the cert-manager Certificate of the secret disappeared during the rotation")
	}
	crts := e.o.Dynamic.Resource(discovery.CertificateGVR).Namespace(req.Namespace)
	if !issuing(crt) {
		SetIssuing(crt, e.o.Clock.Now())
		if _, err := crts.UpdateStatus(ctx, crt, metav1.UpdateOptions{FieldManager: "certwatcher"}); err != nil {
			if apierrors.IsConflict(err) {
				return "", fmt.Errorf("certificate %s changed meanwhile: %w", crt.GetName(), err)
			}
			return "", fmt.Errorf("trigger issuance of certificate %s: %w", crt.GetName(), err)
		}
		log.InfoContext(ctx, "cert-manager re-issuance triggered", "certificate", crt.GetName())
	}
	var newSerial string
	err := e.poll(ctx, e.o.ReissueTimeout, func(ctx context.Context) (bool, error) {
		s, err := e.o.Client.CoreV1().Secrets(req.Namespace).Get(ctx, req.Secret, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		c, err := certinfo.Parse(s.Data[corev1.TLSCertKey])
		if err != nil {
			return false, nil
		}
		if sn := certinfo.SerialHex(c.Leaf()); sn != oldSerial {
			newSerial = sn
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", declined("cert-manager did not write a new certificate to the secret within %s", e.o.ReissueTimeout)
	}
	return newSerial, nil
}

// poll checks cond every PollInterval until it holds or timeout passes.
func (e *Executor) poll(ctx context.Context, timeout time.Duration, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, e.o.PollInterval, timeout, true, cond)
}

func issuing(crt *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Issuing" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// SetIssuing sets the Issuing condition to True on a Certificate the way
// cmctl renew does (reason ManuallyTriggered).
func SetIssuing(crt *unstructured.Unstructured, now time.Time) {
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	cond := map[string]any{
		"type":               "Issuing",
		"status":             "True",
		"reason":             "ManuallyTriggered",
		"message":            "Certificate re-issuance manually triggered by stateguard certwatcher",
		"lastTransitionTime": now.UTC().Format(time.RFC3339),
		"observedGeneration": crt.GetGeneration(),
	}
	replaced := false
	for i, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Issuing" {
			conds[i], replaced = cond, true
		}
	}
	if !replaced {
		conds = append(conds, cond)
	}
	_ = unstructured.SetNestedSlice(crt.Object, conds, "status", "conditions")
}

// reissueWithCA signs a new certificate with the CA named by the
// annotation and writes it with the resourceVersion read, so a concurrent
// writer makes this attempt fail and retry rather than be overwritten.
func (e *Executor) reissueWithCA(ctx context.Context, log *slog.Logger, s *corev1.Secret) (string, error) {
	ref := s.Annotations[CASecretAnnotation]
	caNS, caName, ok := strings.Cut(ref, "/")
	if !ok || caNS == "" || caName == "" {
		return "", declined("annotation %s=%q: want <namespace>/<name>", CASecretAnnotation, ref)
	}
	caSecret, err := e.o.Client.CoreV1().Secrets(caNS).Get(ctx, caName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", declined("CA secret %s not found", ref)
	}
	if err != nil {
		return "", fmt.Errorf("get CA secret %s: %w", ref, err)
	}
	ca, err := ParseCA(caSecret.Data[corev1.TLSCertKey], caSecret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return "", declined("CA secret %s: %v", ref, err)
	}
	old, err := certinfo.Parse(s.Data[corev1.TLSCertKey])
	if err != nil {
		return "", declined("%s of the secret is unreadable: %v", corev1.TLSCertKey, err)
	}
	_, keyType, err := parseKey(s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		keyType = "PRIVATE KEY"
	}
	issued, err := Reissue(old.Leaf(), keyType, ca, e.o.Clock.Now())
	if err != nil {
		return "", declined("issue: %v", err)
	}
	upd := s.DeepCopy()
	certPEM := issued.CertPEM
	caPEM := pemOf(ca.Cert)
	if len(old.Certs) > 1 {
		certPEM = append(append([]byte{}, certPEM...), caPEM...)
	}
	upd.Data[corev1.TLSCertKey] = certPEM
	upd.Data[corev1.TLSPrivateKeyKey] = issued.KeyPEM
	if _, ok := upd.Data["ca.crt"]; ok {
		upd.Data["ca.crt"] = caPEM
	}
	// upd carries the resourceVersion read: the API server rejects the
	// update if the Secret changed since.
	if _, err := e.o.Client.CoreV1().Secrets(s.Namespace).Update(ctx, upd, metav1.UpdateOptions{FieldManager: "certwatcher"}); err != nil {
		if apierrors.IsConflict(err) {
			return "", fmt.Errorf("secret changed while re-issuing; retrying: %w", err)
		}
		return "", fmt.Errorf("write secret: %w", err)
	}
	log.InfoContext(ctx, "certificate re-issued by in-cluster CA", "ca_secret", ref)
	return certinfo.SerialHex(issued.Cert), nil
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
