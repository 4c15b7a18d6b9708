package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
)

// Config is the snapshotter's configuration.
type Config struct {
	service.Common
	// Kubeconfig is a kubeconfig path; empty uses the in-cluster config.
	Kubeconfig string
	// TokensFile holds the bearer tokens of the HTTP API (/v1/restore-plan),
	// one per line; without it the API is off.
	TokensFile string
	// Namespace limits the snapshotter to one namespace; empty means all.
	Namespace string
	// Resync bounds the time between two passes.
	Resync time.Duration
	// LeaderElect enables leader election (on by default).
	LeaderElect    bool
	LeaseNamespace string
	LeaseName      string
	Identity       string
	LeaseDuration  time.Duration
	RenewDeadline  time.Duration
	RetryPeriod    time.Duration
	// Observe turns the workload observer on (workload.observed).
	Observe bool
	// ObserveResync is the period of the observer's full resync.
	ObserveResync time.Duration
	// ObserveBucket is the KV bucket of the last observation per PVC.
	ObserveBucket string
	// ObserveTLSSecrets lists the TLS Secrets pods mount (a metadata-only
	// informer of kubernetes.io/tls Secrets).
	ObserveTLSSecrets bool
	// EncryptionAllow are the operator's allowlist entries
	// (driver:parameter=value) of classes that encrypt at rest.
	EncryptionAllow []string
	// Allow is EncryptionAllow parsed.
	Allow []encryption.Allow
	// SafetySnapshotTTL is how long a Restore's safety snapshot stays
	// pinned after the Restore ended (a Restore's
	// spec.safetySnapshotTTL overrides it).
	SafetySnapshotTTL time.Duration
	// RecommendationsBucket is the KV bucket of the current restore
	// recommendation per incident and claim.
	RecommendationsBucket string
}

// Load parses args (without the program name) with defaults from getenv.
func Load(args []string, getenv func(string) string, output io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("snapshotter", flag.ContinueOnError)
	fs.SetOutput(output)
	s := envflag.New(fs, getenv)
	c.Register(s, ":8082")
	s.String(&c.Kubeconfig, "kubeconfig", "KUBECONFIG", "", "kubeconfig file; empty uses the in-cluster service account")
	s.String(&c.TokensFile, "api-tokens-file", "API_TOKENS_FILE", "", "file of API bearer tokens, one per line (# comments skipped); /v1/restore-plan is off without it")
	s.String(&c.Namespace, "namespace", "WATCH_NAMESPACE", "", "only handle SnapshotPolicies of this namespace; empty means all namespaces")
	s.Duration(&c.Resync, "resync", "RESYNC", 30*time.Second, "longest wait between two passes over all policies")
	s.Bool(&c.LeaderElect, "leader-elect", "LEADER_ELECT", true, "elect a leader on a coordination.k8s.io Lease so that only one replica snapshots")
	s.String(&c.LeaseNamespace, "leader-elect-namespace", "POD_NAMESPACE", "stateguard", "namespace of the leader election Lease")
	s.String(&c.LeaseName, "leader-elect-lease", "LEADER_ELECT_LEASE", "stateguard-snapshotter", "name of the leader election Lease")
	s.String(&c.Identity, "leader-elect-identity", "POD_NAME", "", "identity of this replica in the election (default: the host name)")
	s.Duration(&c.LeaseDuration, "leader-elect-lease-duration", "LEADER_ELECT_LEASE_DURATION", 15*time.Second, "how long a lease is valid without renewal")
	s.Duration(&c.RenewDeadline, "leader-elect-renew-deadline", "LEADER_ELECT_RENEW_DEADLINE", 10*time.Second, "how long the leader tries to renew before giving up")
	s.Duration(&c.RetryPeriod, "leader-elect-retry-period", "LEADER_ELECT_RETRY_PERIOD", 2*time.Second, "wait between attempts to acquire or renew")
	s.Bool(&c.Observe, "observe", "OBSERVE", true, "publish workload.observed whenever the pods on a protected PVC change (leader only)")
	s.Duration(&c.ObserveResync, "observe-resync", "OBSERVE_RESYNC", 10*time.Minute, "period of the observer's full resync, which republishes every observation (same ids)")
	s.String(&c.ObserveBucket, "observe-kv-bucket", "OBSERVE_KV_BUCKET", "snapshotter-observations", "JetStream KV bucket keeping the last observation of each protected PVC")
	s.Bool(&c.ObserveTLSSecrets, "observe-tls-secrets", "OBSERVE_TLS_SECRETS", false, "also name the kubernetes.io/tls Secrets the pods mount in observations (watches Secret metadata only; needs list and watch on secrets, which the shipped RBAC does not grant)")
	s.Strings(&c.EncryptionAllow, "encryption-allow", "ENCRYPTION_ALLOW", nil, "a StorageClass or VolumeSnapshotClass parameter that means encrypted at rest for a CSI driver not in the documented table, as driver:parameter=value (repeat the flag; comma-separated in the environment)")
	s.Duration(&c.SafetySnapshotTTL, "restore-safety-snapshot-ttl", "RESTORE_SAFETY_SNAPSHOT_TTL", 7*24*time.Hour, "how long a Restore's safety snapshot stays pinned after the Restore ended (spec.safetySnapshotTTL overrides it); then it is deleted unless a pin request or a running Restore still needs it")
	s.String(&c.RecommendationsBucket, "recommendations-kv-bucket", "RECOMMENDATIONS_KV_BUCKET", "snapshotter-recommendations", "JetStream KV bucket keeping the current restore recommendation per incident and claim (for Restores naming an incident and no snapshot)")
	if err := s.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Identity == "" {
		h, err := os.Hostname()
		if err != nil {
			return Config{}, fmt.Errorf("leader election identity: %w", err)
		}
		c.Identity = h
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	for _, a := range c.EncryptionAllow {
		allow, _ := encryption.ParseAllow(a) // checked in Validate
		c.Allow = append(c.Allow, allow)
	}
	return c, nil
}

// Validate reports inconsistent settings.
func (c Config) Validate() error {
	var errs []error
	if err := c.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, a := range c.EncryptionAllow {
		if _, err := encryption.ParseAllow(a); err != nil {
			errs = append(errs, fmt.Errorf("--encryption-allow: %w", err))
		}
	}
	if c.SafetySnapshotTTL <= 0 {
		errs = append(errs, errors.New("--restore-safety-snapshot-ttl must be positive"))
	}
	if c.RecommendationsBucket == "" {
		errs = append(errs, errors.New("--recommendations-kv-bucket is required"))
	}
	if c.Resync <= 0 {
		errs = append(errs, errors.New("--resync must be positive"))
	}
	if c.Observe && (c.ObserveResync <= 0 || c.ObserveBucket == "") {
		errs = append(errs, errors.New("--observe needs a positive --observe-resync and a --observe-kv-bucket"))
	}
	if c.LeaderElect {
		if c.LeaseNamespace == "" || c.LeaseName == "" {
			errs = append(errs, errors.New("--leader-elect-namespace and --leader-elect-lease are required with --leader-elect"))
		}
		if c.LeaseDuration <= c.RenewDeadline || c.RenewDeadline <= c.RetryPeriod || c.RetryPeriod <= 0 {
			errs = append(errs, errors.New("leader election needs lease duration > renew deadline > retry period > 0"))
		}
	}
	return errors.Join(errs...)
}
