package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"

	"github.com/stateguard/stateguard/services/certwatcher/internal/expiry"
	"github.com/stateguard/stateguard/services/certwatcher/internal/marks"
)

// Cluster modes.
const (
	ClusterAuto = "auto" // use Kubernetes when a kubeconfig or in-cluster config is found
	ClusterOn   = "on"   // require Kubernetes
	ClusterOff  = "off"  // files only
)

// Config is certwatcher's configuration.
type Config struct {
	service.Common

	Cluster        string
	Kubeconfig     string
	Namespaces     []string
	LabelSelector  string
	WatchDirs      []string
	Thresholds     []expiry.Threshold
	PEMKeyPatterns []string

	EvaluateInterval time.Duration
	DirRescan        time.Duration
	KVBucket         string
	// MarkTTL is how long the KV bucket keeps a mark that is no longer
	// consulted; 0 in flags means twice the longest threshold (at least 7d).
	MarkTTL time.Duration

	Rotation        bool
	DryRun          bool
	RotationRate    Rate
	RotationBurst   int
	ReissueTimeout  time.Duration
	RolloutTimeout  time.Duration
	VerifyTimeout   time.Duration
	ConsumerName    string
	ConsumerAckWait time.Duration

	// InCluster reports whether KUBERNETES_SERVICE_HOST is set; filled by
	// Load from getenv.
	InCluster bool
}

// DefaultPEMKeyPatterns are the Opaque Secret keys read as certificates.
var DefaultPEMKeyPatterns = []string{"*.crt", "*.pem", "*.cert", "ca.crt"}

// Load parses args (without the program name) and the environment.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("certwatcher", flag.ContinueOnError)
	fs.SetOutput(out)
	s := envflag.New(fs, getenv)
	c.Common.Register(s, ":8081")

	var thresholds []string
	var rate string
	s.String(&c.Cluster, "cluster", "CERTWATCHER_CLUSTER", ClusterAuto, "auto (Kubernetes when configured), on (required) or off (only --watch-dir)")
	s.String(&c.Kubeconfig, "kubeconfig", "KUBECONFIG", "", "kubeconfig file; empty means in-cluster config")
	s.Strings(&c.Namespaces, "namespace", "CERTWATCHER_NAMESPACES", nil, "namespace to watch, repeatable; none means all namespaces")
	s.String(&c.LabelSelector, "label-selector", "CERTWATCHER_LABEL_SELECTOR", "", "label selector for Secrets, e.g. team=web")
	s.Strings(&c.WatchDirs, "watch-dir", "CERTWATCHER_WATCH_DIRS", nil, "directory of PEM files to watch, repeatable")
	s.Strings(&thresholds, "thresholds", "CERTWATCHER_THRESHOLDS", expiry.DefaultThresholds, "expiry thresholds, comma-separated: 30d,14d,7d,1d,expired")
	s.Strings(&c.PEMKeyPatterns, "pem-key-patterns", "CERTWATCHER_PEM_KEY_PATTERNS", DefaultPEMKeyPatterns, "glob patterns of Secret keys read as PEM certificates (Opaque Secrets, and extra keys of TLS Secrets)")
	s.Duration(&c.EvaluateInterval, "evaluate-interval", "CERTWATCHER_EVALUATE_INTERVAL", time.Minute, "how often known certificates are checked against the thresholds as time passes")
	s.Duration(&c.DirRescan, "dir-rescan", "CERTWATCHER_DIR_RESCAN", 5*time.Minute, "full rescan of --watch-dir besides file notifications (0 disables)")
	s.String(&c.KVBucket, "kv-bucket", "CERTWATCHER_KV_BUCKET", "certwatcher", "JetStream KV bucket remembering reported thresholds and handled rotation requests")
	s.Duration(&c.MarkTTL, "mark-ttl", "CERTWATCHER_MARK_TTL", 0, "how long the KV bucket keeps marks no longer consulted (marks of certificates still present are kept); 0 = twice the longest threshold, at least 168h; must exceed the longest threshold")
	s.Bool(&c.Rotation, "rotation", "CERTWATCHER_ROTATION", true, "consume rotation requests (needs Kubernetes)")
	s.Bool(&c.DryRun, "dry-run", "CERTWATCHER_DRY_RUN", false, "report what a rotation would do without changing anything")
	s.String(&rate, "rotation-rate", "CERTWATCHER_ROTATION_RATE", "6/m", "rotations allowed per second, minute or hour: 6/m, 1/s, 20/h")
	s.Int(&c.RotationBurst, "rotation-burst", "CERTWATCHER_ROTATION_BURST", 3, "rotations allowed at once")
	s.Duration(&c.ReissueTimeout, "reissue-timeout", "CERTWATCHER_REISSUE_TIMEOUT", 5*time.Minute, "how long to wait for cert-manager to write the new certificate")
	s.Duration(&c.RolloutTimeout, "rollout-timeout", "CERTWATCHER_ROLLOUT_TIMEOUT", 5*time.Minute, "how long to wait for rolled workloads to be updated")
	s.Duration(&c.VerifyTimeout, "verify-timeout", "CERTWATCHER_VERIFY_TIMEOUT", 5*time.Second, "TLS dial timeout when checking the served certificate")
	s.String(&c.ConsumerName, "consumer", "CERTWATCHER_CONSUMER", "certwatcher-rotation", "durable consumer name for rotation requests")
	if err := s.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	ths, err := expiry.ParseThresholds(thresholds)
	if err != nil {
		return Config{}, err
	}
	c.Thresholds = ths
	if c.MarkTTL == 0 {
		c.MarkTTL = marks.DefaultTTL(ths[0].Before)
	}
	if c.RotationRate, err = ParseRate(rate); err != nil {
		return Config{}, err
	}
	c.InCluster = getenv("KUBERNETES_SERVICE_HOST") != ""
	c.ConsumerAckWait = c.ReissueTimeout + c.RolloutTimeout + 2*c.VerifyTimeout + time.Minute
	return c, c.Validate()
}

// Validate reports inconsistent settings.
func (c Config) Validate() error {
	var errs []error
	switch c.Cluster {
	case ClusterAuto, ClusterOn, ClusterOff:
	default:
		errs = append(errs, fmt.Errorf("--cluster %q: want auto, on or off", c.Cluster))
	}
	if err := c.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range c.PEMKeyPatterns {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("--pem-key-patterns %q: %w", p, err))
		}
	}
	if c.RotationBurst < 1 {
		errs = append(errs, errors.New("--rotation-burst must be at least 1"))
	}
	if len(c.Thresholds) > 0 && c.MarkTTL <= c.Thresholds[0].Before {
		errs = append(errs, fmt.Errorf("--mark-ttl %s must exceed the longest threshold %s", c.MarkTTL, c.Thresholds[0].Name))
	}
	if c.EvaluateInterval <= 0 {
		errs = append(errs, errors.New("--evaluate-interval must be positive"))
	}
	for _, d := range c.WatchDirs {
		if strings.TrimSpace(d) == "" {
			errs = append(errs, errors.New("--watch-dir is empty"))
		}
	}
	if c.Cluster == ClusterOff && len(c.WatchDirs) == 0 {
		errs = append(errs, errors.New("--cluster=off needs at least one --watch-dir"))
	}
	return errors.Join(errs...)
}

// UseCluster reports whether certwatcher should talk to Kubernetes.
func (c Config) UseCluster() bool {
	switch c.Cluster {
	case ClusterOn:
		return true
	case ClusterOff:
		return false
	}
	return c.Kubeconfig != "" || c.InCluster || len(c.WatchDirs) == 0
}

// Rate is a number of events per period.
type Rate struct {
	N   int
	Per time.Duration
}

// PerSecond returns the rate in events per second.
func (r Rate) PerSecond() float64 { return float64(r.N) / r.Per.Seconds() }

// ParseRate parses N/s, N/m or N/h.
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	count, err := strconv.Atoi(n)
	if !ok || per == 0 || err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("--rotation-rate %q: want a positive count per s, m or h, such as 6/m", s)
	}
	return Rate{N: count, Per: per}, nil
}
