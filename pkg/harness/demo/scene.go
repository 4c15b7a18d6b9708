package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/stateguard/stateguard/pkg/events"
)

// Scene names the demo's objects.
type Scene struct {
	Namespace string
	App       string
	// Repository is the app's source repository, which its pods name
	// (stateguard.io/repository): an upload that names no app joins it.
	Repository string
	PVC        string
	TLSSecret  string
	CASecret   string
	Policy     string
	Schedule   string
	CertExpiry time.Duration
	// SnapshotClass is the VolumeSnapshotClass the policy uses; the local
	// cluster's is kubetest.ClassName.
	SnapshotClass string
}

// Default is the scene of `make run`.
func Default() Scene {
	return Scene{
		Namespace:  "shop",
		App:        "db",
		Repository: "acme/shop-db",
		PVC:        "db-data",
		TLSSecret:  "db-tls",
		CASecret:   "shop-ca",
		Policy:     "db-every-minute",
		Schedule:   "* * * * *",
		CertExpiry: 20 * 24 * time.Hour,
		// The VolumeSnapshotClass of kubetest's cluster (kubetest.ClassName).
		SnapshotClass: "stateguard-csi",
	}
}

// Version is one build of the app. Digest is what the node reports the
// image ran as (the imageID of the container status), known once it runs:
// Seed and Deploy return the version with it.
type Version struct {
	Name   string // app.kubernetes.io/version
	Image  string // repository:tag
	Digest string // sha256:…
	Commit string // the commit it was built from: stateguard.io/commit on its pods
}

// Ref is the image reference with digest that SARIF uploads name.
func (v Version) Ref() string { return repo(v.Image) + "@" + v.Digest }

func repo(image string) string {
	for i := len(image) - 1; i >= 0; i-- {
		switch image[i] {
		case ':':
			return image[:i]
		case '/':
			return image
		}
	}
	return image
}

// Versions of the demo app: 1.0 is clean, 1.1 ships a hard-coded
// credential, 1.2 is the fix.
var (
	V1 = Version{Name: "1.0.0", Image: "registry.example/shop/db:1.0.0", Commit: hex40('1')}
	V2 = Version{Name: "1.1.0", Image: "registry.example/shop/db:1.1.0", Commit: hex40('2')}
	V3 = Version{Name: "1.2.0", Image: "registry.example/shop/db:1.2.0", Commit: hex40('3')}
)

func hex64(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// PolicyGVR is the SnapshotPolicy resource.
var PolicyGVR = schema.GroupVersionResource{Group: "stateguard.io", Version: "v1alpha1", Resource: "snapshotpolicies"}

// Seed creates the scene's objects, running version v, and returns v with
// the digest its pod runs (the Deployment's pods are made by the cluster's
// controllers and run by its node).
func Seed(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, s Scene, v Version) (Version, error) {
	return seed(ctx, cs, dyn, s, v, nil)
}

// seed is Seed with a step after the rollout, before the policy exists:
// what it writes into the claim is in the policy's first snapshot.
func seed(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, s Scene, v Version, afterRollout func(Version) error) (Version, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return v, fmt.Errorf("namespace: %w", err)
	}
	caPEM, caKeyPEM, caCert, caKey, err := newCA(s.Namespace + " demo CA")
	if err != nil {
		return v, err
	}
	certPEM, keyPEM, err := newLeaf(caCert, caKey, s.App+"."+s.Namespace+".svc", s.CertExpiry)
	if err != nil {
		return v, err
	}
	secrets := []*corev1.Secret{
		{
			ObjectMeta: metav1.ObjectMeta{Name: s.CASecret, Namespace: s.Namespace},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": caPEM, "tls.key": caKeyPEM, "ca.crt": caPEM},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: s.TLSSecret, Namespace: s.Namespace,
				Annotations: map[string]string{"stateguard.io/ca-secret": s.Namespace + "/" + s.CASecret}},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": caPEM},
		},
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: s.PVC, Namespace: s.Namespace, Labels: map[string]string{"stateguard.io/backup": "true", "app.kubernetes.io/name": s.App}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(s.Namespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return v, fmt.Errorf("pvc: %w", err)
	}
	labels := map[string]string{"app.kubernetes.io/name": s.App}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: s.App, Namespace: s.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(s, v),
		},
	}
	if _, err := cs.AppsV1().Deployments(s.Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return v, fmt.Errorf("deployment: %w", err)
	}
	// Deploy (not only the wait): on a second run the Deployment exists.
	v, err = Deploy(ctx, cs, s, v)
	if err != nil {
		return v, err
	}
	if afterRollout != nil {
		if err := afterRollout(v); err != nil {
			return v, err
		}
	}
	// The Secrets come after the pods that mount them, so the first expiry
	// event names their users: the correlator learns from it which
	// workloads mount which TLS Secret.
	for _, sec := range secrets {
		if _, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return v, fmt.Errorf("secret %s: %w", sec.Name, err)
		}
	}
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stateguard.io/v1alpha1",
		"kind":       "SnapshotPolicy",
		"metadata":   map[string]any{"name": s.Policy, "namespace": s.Namespace},
		"spec": map[string]any{
			"pvcSelector":             map[string]any{"matchLabels": map[string]any{"stateguard.io/backup": "true"}},
			"schedule":                s.Schedule,
			"timeZone":                "UTC",
			"volumeSnapshotClassName": s.SnapshotClass,
			"retention":               map[string]any{"keepLast": int64(5), "hourly": int64(24), "daily": int64(7)},
		},
	}}
	if _, err := dyn.Resource(PolicyGVR).Namespace(s.Namespace).Create(ctx, policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return v, fmt.Errorf("snapshot policy: %w", err)
	}
	return v, nil
}

func podTemplate(s Scene, v Version) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{"app.kubernetes.io/name": s.App, "app.kubernetes.io/version": v.Name},
			// What a deployment pipeline sets from the image's OCI
			// annotations: where the code comes from and which commit.
			Annotations: map[string]string{events.AnnotationRepository: s.Repository, events.AnnotationCommit: v.Commit},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "db",
				Image: v.Image,
				VolumeMounts: []corev1.VolumeMount{
					{Name: "data", MountPath: "/var/lib/db"},
					{Name: "tls", MountPath: "/etc/tls", ReadOnly: true},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: s.PVC}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s.TLSSecret}}},
			},
		},
	}
}

// Deploy makes version v the running one: it changes the Deployment's pod
// template and waits until the rollout is done — the cluster's deployment
// controller made a new ReplicaSet, its pods run v on the node and the old
// pods are gone. It returns v with the digest its pod runs.
func Deploy(ctx context.Context, cs kubernetes.Interface, s Scene, v Version) (Version, error) {
	tmpl := podTemplate(s, v)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := cs.AppsV1().Deployments(s.Namespace).Get(ctx, s.App, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ann := maps.Clone(d.Spec.Template.Annotations) // a rotation's restartedAt stays
		if ann == nil {
			ann = map[string]string{}
		}
		maps.Copy(ann, podTemplate(s, v).Annotations)
		tmpl.Annotations = ann
		d.Spec.Template = tmpl
		_, err = cs.AppsV1().Deployments(s.Namespace).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return v, fmt.Errorf("deployment: %w", err)
	}
	return waitRollout(ctx, cs, s, v)
}

// rolloutTimeout bounds waitRollout.
const rolloutTimeout = 2 * time.Minute

// waitRollout waits until the Deployment's rollout of v is done: its
// controller saw the latest spec, every replica is updated and ready, and
// every pod of the app runs v's image (no old pod left). It returns v with
// the digest the node reports for the image.
func waitRollout(ctx context.Context, cs kubernetes.Interface, s Scene, v Version) (Version, error) {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, rolloutTimeout, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(s.Namespace).Get(ctx, s.App, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := ptr.Deref(d.Spec.Replicas, 1)
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.ReadyReplicas != want || st.Replicas != want {
			last = fmt.Sprintf("deployment: %d replicas, %d updated, %d ready, want %d", st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, want)
			return false, nil
		}
		pods, err := cs.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + s.App})
		if err != nil {
			return false, err
		}
		digest := ""
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Spec.Containers[0].Image != v.Image {
				last = fmt.Sprintf("pod %s: %s, image %s", p.Name, p.Status.Phase, p.Spec.Containers[0].Image)
				return false, nil
			}
			_, d, ok := strings.Cut(p.Status.ContainerStatuses[0].ImageID, "@")
			if !ok {
				last = fmt.Sprintf("pod %s: no image digest yet", p.Name)
				return false, nil
			}
			digest = d
		}
		if int32(len(pods.Items)) != want || digest == "" {
			last = fmt.Sprintf("%d pods, want %d", len(pods.Items), want)
			return false, nil
		}
		v.Digest = digest
		return true, nil
	})
	if err != nil {
		return v, fmt.Errorf("rollout of %s %s: %w (%s)", s.App, v.Name, err, last)
	}
	return v, nil
}

func newCA(cn string) (certPEM, keyPEM []byte, cert *x509.Certificate, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"stateguard demo"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), cert, key, nil
}

func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, dns string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dns},
		DNSNames:     []string{dns},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
