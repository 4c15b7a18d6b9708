package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// Services are the five services, in start order (the console reads the
// correlator's API, so it comes after it).
var Services = []string{"sastingest", "certwatcher", "snapshotter", "correlator", "console"}

// DefaultPorts are the services' HTTP ports for `make run`.
var DefaultPorts = map[string]int{"sastingest": 8080, "certwatcher": 8081, "snapshotter": 8082, "correlator": 8083, "console": 8084}

// readOnly are the services that create nothing on NATS (the console only
// reads the streams): they have no bootstrap subcommand.
var readOnly = map[string]bool{"console": true}

// Config configures Start.
type Config struct {
	// Root is the repository root (holding go.work).
	Root string
	// Dir holds the stack's state: NATS store, kubeconfig, binaries, logs.
	Dir string
	// NATSPort for the embedded server; 0 picks a free port.
	NATSPort int
	// Kubeconfig of an existing cluster; empty starts a local control plane.
	Kubeconfig string
	// Ports of the services' HTTP servers; a missing or 0 entry picks a free
	// port.
	Ports map[string]int
	// Env is added to every service's environment (OTEL_*, LOG_LEVEL, …).
	Env []string
	// ServiceEnv is added to one service's environment.
	ServiceEnv map[string][]string
	// Args are extra command-line arguments per service.
	Args map[string][]string
	// Log receives progress lines.
	Log *slog.Logger
	// BuildFlags are passed to go build (the end-to-end test adds -race).
	BuildFlags []string
	// TLS serves every service over HTTPS with a certificate of a CA made
	// for the stack (Stack.CAFile); plain HTTP on loopback otherwise.
	TLS bool
}

// Stack is a running local stack.
type Stack struct {
	NATS       *natsserver.Server
	NATSURL    string
	Kubeconfig string
	RestConfig *rest.Config
	// Cluster is the local cluster (nil on the cluster of Config.Kubeconfig):
	// the control plane, the controllers, KWOK's node and the CSI driver.
	Cluster *kubetest.Cluster
	// Addr maps a service to its HTTP address (127.0.0.1:port).
	Addr map[string]string
	// Token is the bearer token the services' APIs accept.
	Token string
	// OperatorToken is the correlator API's operator token (resolve an
	// incident, dismiss a finding), recorded as the actor "dev-operator".
	OperatorToken string

	// CAFile is the PEM CA that verifies the services' HTTPS certificates
	// (Config.TLS); empty with plain HTTP.
	CAFile string

	cfg      Config
	watchdog *watchdog
	procs    []*proc
	tls      *stackTLS
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// Start builds the services and starts everything, waiting until every
// service answers /readyz. On error it stops what it started.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{"bin", "logs", "nats"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	s := &Stack{cfg: cfg, Addr: map[string]string{}}
	defer func() {
		if err != nil {
			_ = s.Stop(context.Background())
		}
	}()
	cfg.Log.Info("building the services")
	if err := s.build(ctx); err != nil {
		return nil, err
	}

	port := cfg.NATSPort
	if port == 0 {
		port = -1
	}
	s.NATS, err = natstest.Start(natstest.Config{StoreDir: filepath.Join(cfg.Dir, "nats"), Port: port, SyncAlways: true})
	if err != nil {
		return nil, err
	}
	s.NATSURL = s.NATS.ClientURL()
	cfg.Log.Info("NATS JetStream running (sync_interval: always)", "url", s.NATSURL)

	if cfg.Kubeconfig != "" {
		s.Kubeconfig = cfg.Kubeconfig
		s.RestConfig, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
		}
		cfg.Log.Info("using the cluster of KUBECONFIG", "kubeconfig", cfg.Kubeconfig)
	} else {
		cfg.Log.Info("starting a local cluster: kube-apiserver + etcd with the CRDs, kube-controller-manager, kube-scheduler, KWOK's node, the CSI snapshot-controller, csi-provisioner and csi-snapshotter on the test CSI driver")
		s.Cluster, s.watchdog, err = startCluster(ctx, cfg.Log)
		if err != nil {
			return nil, err
		}
		s.RestConfig = s.Cluster.Config
		s.Kubeconfig = filepath.Join(cfg.Dir, "kubeconfig")
		if err := s.Cluster.WriteKubeconfig(s.Kubeconfig); err != nil {
			return nil, err
		}
		// The namespace stateguard is installed in: the snapshotter's
		// leader-election Lease lives there.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stateguard"}}
		if _, err := s.Cluster.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("namespace stateguard: %w", err)
		}
		cfg.Log.Info("cluster running", "kubeconfig", s.Kubeconfig, "started_in", s.Cluster.Startup.Round(time.Millisecond).String(), "logs", s.Cluster.LogDir())
	}

	if err := s.writeSecrets(); err != nil {
		return nil, err
	}
	if cfg.TLS {
		if s.tls, err = newStackTLS(filepath.Join(cfg.Dir, "tls"), Services); err != nil {
			return nil, fmt.Errorf("the stack's certificates: %w", err)
		}
		s.CAFile = s.tls.caFile
		cfg.Log.Info("services serve HTTPS", "ca", s.CAFile)
	}
	// As in a cluster (base/bootstrap/job.yaml): the streams, consumers and
	// buckets are created once, one service after the other, and the
	// services then only bind to them. Services that create or update
	// streams concurrently at start race inside nats-server (a stream
	// update against a consumer create on it, seen under -race).
	for _, name := range Services {
		if readOnly[name] {
			continue
		}
		if err := s.bootstrap(ctx, name); err != nil {
			return nil, err
		}
	}
	for _, name := range Services {
		if err := s.startService(name); err != nil {
			return nil, err
		}
	}
	for _, name := range Services {
		if err := s.waitReady(ctx, name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) build(ctx context.Context) error {
	for _, name := range Services {
		dir := filepath.Join(s.cfg.Root, "services", name)
		if err := s.goBuild(ctx, name, dir, "."); err != nil {
			return err
		}
		if name == "correlator" {
			if err := s.goBuild(ctx, "stateguardctl", dir, "./cmd/stateguardctl"); err != nil {
				return err
			}
		}
	}
	return nil
}

// progressEvery is how often a build that is still running says so.
var progressEvery = 15 * time.Second

// goBuild builds pkg of the module in dir into the stack's bin/name, saying
// every progressEvery that it is still at it: a cold build compiles
// Kubernetes' client libraries and takes minutes.
func (s *Stack) goBuild(ctx context.Context, name, dir, pkg string) error {
	args := append(append([]string{"build"}, s.cfg.BuildFlags...), "-o", filepath.Join(s.cfg.Dir, "bin", name), pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	start := time.Now()
	s.cfg.Log.Info("building", "binary", name)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.cfg.Log.Info("still compiling (a cold build compiles Kubernetes' client libraries: minutes)", "binary", name, "elapsed", time.Since(start).Round(time.Second).String())
			}
		}
	}()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", name, err, b)
	}
	s.cfg.Log.Info("built", "binary", name, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// writeSecrets writes the API token and webhook secrets the services read.
func (s *Stack) writeSecrets() error {
	tok, err := randomToken()
	if err != nil {
		return err
	}
	s.Token = tok
	if err := os.WriteFile(s.TokensFile(), []byte("# generated by the local stack\n"+tok+"\n"), 0o600); err != nil {
		return err
	}
	op, err := randomToken()
	if err != nil {
		return err
	}
	s.OperatorToken = op
	if err := os.WriteFile(s.OperatorTokensFile(), []byte("# generated by the local stack: <token> <actor>\n"+op+" dev-operator\n"), 0o600); err != nil {
		return err
	}
	return os.WriteFile(s.WebhookSecretsFile(), []byte("github dev-github-secret\ngitlab dev-gitlab-secret\n"), 0o600)
}

// Kube is a clientset for the stack's cluster.
func (s *Stack) Kube() kubernetes.Interface { return kubernetes.NewForConfigOrDie(s.RestConfig) }

// TokensFile is the file of bearer tokens the APIs accept.
func (s *Stack) TokensFile() string { return filepath.Join(s.cfg.Dir, "tokens") }

// OperatorTokensFile is the file of the correlator API's operator tokens.
func (s *Stack) OperatorTokensFile() string { return filepath.Join(s.cfg.Dir, "operator-tokens") }

// WebhookSecretsFile holds the scanner webhook secrets.
func (s *Stack) WebhookSecretsFile() string { return filepath.Join(s.cfg.Dir, "webhook-secrets") }

// LogFile is where a service's output goes.
func (s *Stack) LogFile(name string) string { return filepath.Join(s.cfg.Dir, "logs", name+".log") }

// command is the service's command line with the stack's environment.
func (s *Stack) command(name, addr string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.cfg.Dir, "bin", name), args...)
	cmd.Dir = s.cfg.Root
	cmd.Env = append(os.Environ(),
		"NATS_URL="+s.NATSURL,
		"HTTP_ADDR="+addr,
		"KUBECONFIG="+s.Kubeconfig,
		"TOKENS_FILE="+s.TokensFile(),
		"API_TOKENS_FILE="+s.TokensFile(),
		"API_OPERATOR_TOKENS_FILE="+s.OperatorTokensFile(),
		"WEBHOOK_SECRETS_FILE="+s.WebhookSecretsFile(),
	)
	if _, ok := s.Addr["correlator"]; ok && name == "console" {
		// The console reads the correlator's API (over HTTPS with
		// Config.TLS, trusting the stack's CA).
		cmd.Env = append(cmd.Env, "CORRELATOR_URL="+s.URL("correlator"))
		if s.tls != nil {
			cmd.Env = append(cmd.Env, "CORRELATOR_CA_FILE="+s.tls.caFile)
		}
	}
	if s.tls != nil {
		cmd.Env = append(cmd.Env, s.tls.env(name)...)
	}
	cmd.Env = append(cmd.Env, s.cfg.Env...)
	cmd.Env = append(cmd.Env, s.cfg.ServiceEnv[name]...)
	return cmd
}

// bootstrap runs `<service> bootstrap`, which creates or updates the
// service's streams, consumers and buckets and exits; its output starts
// the service's log file.
func (s *Stack) bootstrap(ctx context.Context, name string) error {
	f, err := os.Create(s.LogFile(name))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := s.command(name, "127.0.0.1:0", append([]string{"bootstrap"}, s.cfg.Args[name]...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-cctx.Done():
		_ = cmd.Process.Kill()
		err = fmt.Errorf("%w (after %s)", cctx.Err(), time.Minute)
	}
	if err != nil {
		return fmt.Errorf("bootstrap %s: %w (log: %s)", name, err, s.LogFile(name))
	}
	s.cfg.Log.Info("bootstrapped", "service", name)
	return nil
}

func (s *Stack) startService(name string) error {
	port := s.cfg.Ports[name]
	if port == 0 {
		p, err := natstest.FreePort()
		if err != nil {
			return err
		}
		port = p
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s.Addr[name] = addr
	f, err := os.OpenFile(s.LogFile(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := s.command(name, addr, s.cfg.Args[name]...)
	cmd.Env = append(cmd.Env, "NATS_BIND=true")
	cmd.Stdout, cmd.Stderr = f, f
	// The kernel stops the service if this process dies, so nothing is
	// left behind even on SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1), log: f}
	go func() { p.done <- cmd.Wait() }()
	s.procs = append(s.procs, p)
	s.cfg.Log.Info("service started", "service", name, "pid", cmd.Process.Pid, "url", s.URL(name), "log", s.LogFile(name))
	return nil
}

func (s *Stack) waitReady(ctx context.Context, name string) error {
	url := s.URL(name) + "/readyz"
	hc := s.HTTPClient()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		for _, p := range s.procs {
			if p.name == name {
				select {
				case err := <-p.done:
					p.done <- err
					return fmt.Errorf("%s exited: %w (see %s)", name, err, s.LogFile(name))
				default:
				}
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.cfg.Log.Info("service ready", "service", name)
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after 90s: %s (see %s)", name, last, s.LogFile(name))
}

// Stop sends SIGTERM to every service, waits for each (killing it after
// 20 s), then stops the cluster and NATS.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range s.procs {
		select {
		case err := <-p.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			}
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			err := <-p.done
			errs = append(errs, fmt.Errorf("%s did not stop within 20s; killed: %w", p.name, err))
		}
		p.log.Close()
	}
	s.procs = nil
	if s.Cluster != nil {
		if err := s.Cluster.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
		s.Cluster = nil
	}
	if s.watchdog != nil {
		s.watchdog.release()
		s.watchdog = nil
	}
	if s.NATS != nil {
		s.NATS.Shutdown()
		s.NATS.WaitForShutdown()
		s.NATS = nil
	}
	return errors.Join(errs...)
}

// startCluster starts the local cluster (kubetest.StartClusterEnv) and a
// watchdog that stops kube-apiserver and etcd when this process dies without
// calling Stop (SIGKILL, a crash): the services and the cluster's other
// processes die with it by their parent-death signal, the control plane
// (started by envtest, which sets none) by the watchdog.
func startCluster(ctx context.Context, log *slog.Logger) (*kubetest.Cluster, *watchdog, error) {
	before, err := childPIDs(os.Getpid(), controlPlaneBinaries)
	if err != nil {
		return nil, nil, err
	}
	c, err := kubetest.StartClusterEnv(ctx, kubetest.Options{})
	if err != nil {
		return nil, nil, err
	}
	d, err := guardControlPlane(before)
	if err != nil {
		_ = c.Stop()
		return nil, nil, fmt.Errorf("guard the control plane: %w", err)
	}
	log.Info("control plane guarded: it stops when this process dies", "pids", d.pgids, "watchdog_pid", d.cmd.Process.Pid)
	return c, d, nil
}
