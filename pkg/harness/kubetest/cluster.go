package kubetest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/stateguard/stateguard/pkg/harness/csidriver"
)

// What the cluster creates for the CSI driver.
const (
	// ClassName names both the default StorageClass and the default
	// VolumeSnapshotClass of the driver.
	ClassName = "stateguard-csi"
	// NodeName is the simulated node's name (and the driver's node id).
	NodeName = csidriver.DefaultNodeID
	// KWOKModule and KWOKVersion are where the node and pod Stages besides
	// stateguard's pod-ready come from (the version hack/tools.sh builds).
	KWOKModule  = "sigs.k8s.io/kwok"
	KWOKVersion = "v0.8.0"
)

// Controllers are the kube-controller-manager controllers the cluster runs.
var Controllers = []string{
	"persistentvolume-binder-controller",
	"persistentvolume-protection-controller",
	"persistentvolumeclaim-protection-controller",
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"job-controller",
	"garbage-collector-controller",
}

// ClusterBinaries are the binaries StartCluster runs beside the API server.
var ClusterBinaries = []string{"kube-controller-manager", "kube-scheduler", "kwok", "snapshot-controller", "csi-snapshotter", "csi-provisioner"}

// ErrNoClusterTools says a cluster binary is missing.
var ErrNoClusterTools = errors.New("cluster binaries not found: run `make tools` (it builds kube-controller-manager, kube-scheduler, KWOK, the CSI snapshot-controller, csi-snapshotter and csi-provisioner from the Go module proxy; `make cluster-tools` builds only these)")

// stateguard's KWOK Stages: pods become Running with image digests
// (pod-ready); a Job's pod succeeds, or fails when its command is `false`
// (pod-complete).
var (
	//go:embed kwok/pod-ready.yaml
	podReadyStage []byte
	//go:embed kwok/pod-complete.yaml
	podCompleteStages []byte
)

// kwokStages are KWOK's own Stages the cluster uses, from its module:
// nodes become Ready, deleted pods go.
var kwokStages = []string{
	"kustomize/stage/node/fast/node-initialize.yaml",
	"kustomize/stage/pod/fast/pod-delete.yaml",
}

// Cluster is a control plane with the parts a kubelet-less cluster needs to
// bind claims, take and restore snapshots and run workloads:
// kube-controller-manager (the Controllers), kube-scheduler, KWOK playing
// one node (NodeName), the CSI driver (in this process, on a unix socket)
// with csi-provisioner and csi-snapshotter, and the snapshot-controller.
type Cluster struct {
	*Env
	// Driver is the CSI driver; inject faults with Driver.Inject.
	Driver *csidriver.Driver
	// Dir holds the kubeconfig, the driver's socket and data, and the logs
	// (Dir/logs/<process>.log). It is removed at Stop unless Keep is set.
	Dir string
	// Kubeconfig is the kubeconfig the processes use.
	Kubeconfig string
	// Keep leaves Dir in place at Stop (StartCluster sets it when the test
	// failed, and prints Dir).
	Keep bool
	// Startup is how long StartClusterEnv took, control plane included.
	Startup time.Duration

	procs []*Process
}

// LogDir is the directory of the processes' logs.
func (c *Cluster) LogDir() string { return filepath.Join(c.Dir, "logs") }

// Process returns the cluster's process named name (one of
// ClusterBinaries), or nil.
func (c *Cluster) Process(name string) *Process {
	for _, p := range c.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Processes are the cluster's processes, in ClusterBinaries order.
func (c *Cluster) Processes() []*Process { return slices.Clone(c.procs) }

// clusterBinaries checks that every cluster binary is in dir.
func clusterBinaries(dir string) error {
	for _, b := range ClusterBinaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("%w: %s missing in %s", ErrNoClusterTools, b, dir)
		}
	}
	return nil
}

// StartClusterEnv starts a control plane and the cluster's parts on it and
// waits until the simulated node is Ready. Stop it with Cluster.Stop.
func StartClusterEnv(ctx context.Context, o Options) (c *Cluster, err error) {
	start := time.Now()
	bin, err := BinaryDir()
	if err != nil {
		return nil, err
	}
	if err := clusterBinaries(bin); err != nil {
		return nil, err
	}
	stages, err := kwokConfig()
	if err != nil {
		return nil, err
	}
	// Short: the driver's socket lives here, and t.TempDir's paths can pass
	// the 108-byte limit of a unix socket path.
	dir, err := os.MkdirTemp("", "kubetest-cluster-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig")}
	defer func() {
		if err != nil {
			c.Keep = true
			err = fmt.Errorf("%w (logs in %s)", err, c.LogDir())
			_ = c.Stop()
		}
	}()
	if err := os.MkdirAll(c.LogDir(), 0o755); err != nil {
		return c, err
	}
	kwokFile := filepath.Join(dir, "kwok.yaml")
	if err := os.WriteFile(kwokFile, stages, 0o644); err != nil {
		return c, err
	}
	env, err := StartEnv(o)
	if err != nil {
		return c, err
	}
	c.Env = env
	if err := env.WriteKubeconfig(c.Kubeconfig); err != nil {
		return c, err
	}
	if err := c.startDriver(); err != nil {
		return c, err
	}
	if err := c.createObjects(ctx); err != nil {
		return c, err
	}
	for _, p := range c.processes(bin, kwokFile) {
		c.procs = append(c.procs, p)
		if err := p.Start(); err != nil {
			return c, err
		}
	}
	if err := c.waitNodeReady(ctx); err != nil {
		return c, err
	}
	c.Startup = time.Since(start)
	return c, nil
}

// processes are the cluster's binaries with their arguments.
func (c *Cluster) processes(bin, kwokFile string) []*Process {
	kc := "--kubeconfig=" + c.Kubeconfig
	csi := "--csi-address=unix://" + c.Driver.Endpoint()
	proc := func(name string, args ...string) *Process {
		return &Process{Name: name, Path: filepath.Join(bin, name), Args: args, Log: filepath.Join(c.LogDir(), name+".log")}
	}
	return []*Process{
		proc("kube-controller-manager", kc, "--secure-port=0", "--leader-elect=false",
			"--controllers="+strings.Join(Controllers, ","), "--kube-api-qps=100", "--kube-api-burst=200", "--v=2"),
		proc("kube-scheduler", kc, "--secure-port=0", "--leader-elect=false", "--kube-api-qps=100", "--kube-api-burst=200", "--v=2"),
		proc("kwok", kc, "--config="+kwokFile, "--manage-all-nodes=true"),
		proc("snapshot-controller", kc, "--leader-election=false", "--kube-api-qps=100", "--kube-api-burst=200", "--v=4"),
		proc("csi-snapshotter", kc, csi, "--leader-election=false", "--extra-create-metadata", "--kube-api-qps=100", "--kube-api-burst=200", "--v=4"),
		proc("csi-provisioner", kc, csi, "--leader-election=false", "--extra-create-metadata", "--kube-api-qps=100", "--kube-api-burst=200", "--v=4"),
	}
}

// kwokConfig is KWOK's configuration: its node and pod Stages from its
// module, and stateguard's pod-ready and pod-complete Stages.
func kwokConfig() ([]byte, error) {
	mod, err := ModuleDir(KWOKModule, KWOKVersion)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, f := range kwokStages {
		data, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil {
			return nil, fmt.Errorf("kwok stages: %w", err)
		}
		b.Write(data)
		b.WriteString("\n---\n")
	}
	b.Write(podReadyStage)
	b.WriteString("\n---\n")
	b.Write(podCompleteStages)
	return b.Bytes(), nil
}

func (c *Cluster) startDriver() error {
	f, err := os.Create(filepath.Join(c.LogDir(), "csidriver.log"))
	if err != nil {
		return err
	}
	d, err := csidriver.New(csidriver.Options{
		Root: filepath.Join(c.Dir, "csi"),
		Log:  slog.New(slog.NewJSONHandler(f, nil)),
	})
	if err != nil {
		f.Close()
		return err
	}
	if err := d.Start(filepath.Join(c.Dir, "csi.sock")); err != nil {
		f.Close()
		return err
	}
	c.Driver = d
	return nil
}

// createObjects creates what a kubelet and an installer would: the Node
// labelled with the driver's topology key, its CSINode naming the driver,
// the CSIDriver, and the default StorageClass and VolumeSnapshotClass.
func (c *Cluster) createObjects(ctx context.Context) error {
	d := c.Driver
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: NodeName,
		Labels: map[string]string{
			"kubernetes.io/hostname": NodeName,
			"kubernetes.io/os":       "linux",
			"type":                   "kwok",
			d.TopologyKey():          d.NodeID(),
		},
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
	}}
	node, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	csiNode := &storagev1.CSINode{
		ObjectMeta: metav1.ObjectMeta{Name: NodeName, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
		}}},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{
			Name: d.Name(), NodeID: d.NodeID(), TopologyKeys: []string{d.TopologyKey()},
		}}},
	}
	if _, err := c.Client.StorageV1().CSINodes().Create(ctx, csiNode, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create csinode: %w", err)
	}
	driver := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name()},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired:       ptr.To(false),
			PodInfoOnMount:       ptr.To(false),
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		},
	}
	if _, err := c.Client.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create csidriver: %w", err)
	}
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: ClassName, Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       d.Name(),
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
	if _, err := c.Client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create storageclass: %w", err)
	}
	sn, err := snapclient.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	vsc := &snapv1.VolumeSnapshotClass{
		ObjectMeta:     metav1.ObjectMeta{Name: ClassName, Annotations: map[string]string{"snapshot.storage.kubernetes.io/is-default-class": "true"}},
		Driver:         d.Name(),
		DeletionPolicy: snapv1.VolumeSnapshotContentDelete,
	}
	if _, err := sn.SnapshotV1().VolumeSnapshotClasses().Create(ctx, vsc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create volumesnapshotclass: %w", err)
	}
	return nil
}

// waitNodeReady waits for KWOK to report the node Ready, and fails early
// when a process exits.
func (c *Cluster) waitNodeReady(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, p := range c.procs {
			if err := p.Exited(); err != nil {
				return false, fmt.Errorf("%s: %w (log: %s)", p.Name, err, p.Log)
			}
		}
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the timeout
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for node %s Ready: %w", NodeName, err)
	}
	return c.untaintNode(ctx)
}

// untaintNode removes the not-ready taint the API server puts on a new
// Node, as kube-controller-manager's node-lifecycle controller would once
// the node is Ready (that controller is not run: it would want the
// kubelet's heartbeats).
func (c *Cluster) untaintNode(ctx context.Context) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints := slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady })
		if len(taints) == len(n.Spec.Taints) {
			return nil
		}
		n.Spec.Taints = taints
		_, err = c.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("untaint node %s: %w", NodeName, err)
	}
	return nil
}

// ClaimDir returns the driver's directory holding the data of the volume
// bound to claim ns/name (the PersistentVolume's CSI volume handle).
func (c *Cluster) ClaimDir(ctx context.Context, ns, name string) (string, error) {
	pvc, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("claim %s/%s is not bound", ns, name)
	}
	pv, err := c.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != c.Driver.Name() {
		return "", fmt.Errorf("volume %s is not the driver's", pv.Name)
	}
	return c.Driver.VolumePath(pv.Spec.CSI.VolumeHandle), nil
}

// Stop stops the processes (SIGTERM, then SIGKILL), the driver and the
// control plane, and removes Dir unless Keep is set.
func (c *Cluster) Stop() error {
	var errs []error
	done := make(chan error, len(c.procs))
	for _, p := range c.procs {
		go func() { done <- p.Stop() }()
	}
	for range c.procs {
		errs = append(errs, <-done)
	}
	if c.Driver != nil {
		c.Driver.Stop()
	}
	if c.Env != nil {
		errs = append(errs, c.Env.Stop())
	}
	if !c.Keep {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	return errors.Join(errs...)
}

// StartCluster starts a cluster for the test and stops it at cleanup; when
// the test failed it keeps the logs and prints where they are. A missing
// binary fails the test with the command that builds it. Packages that need
// only the API server use Start, which starts in a fraction of the time.
func StartCluster(tb testing.TB, opts ...Options) *Cluster {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c, err := StartClusterEnv(tb.Context(), o)
	if err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	tb.Logf("kubetest: cluster started in %s (logs in %s)", c.Startup.Round(time.Millisecond), c.LogDir())
	tb.Cleanup(func() {
		if tb.Failed() {
			c.Keep = true
			for _, p := range c.procs {
				if err := p.Exited(); err != nil {
					tb.Logf("kubetest: %s ended: %v", p.Name, err)
				}
			}
			tb.Logf("kubetest: the cluster's logs are kept in %s", c.LogDir())
		}
		if err := c.Stop(); err != nil {
			tb.Logf("kubetest: stop cluster: %v", err)
		}
	})
	return c
}

// MainCluster starts one cluster for a test package, runs its tests and
// stops it; call it from TestMain so the package's tests share it (each in
// its own Namespace, faulting only its own calls with csidriver.InNamespace):
//
//	var cluster *kubetest.Cluster
//	func TestMain(m *testing.M) { os.Exit(kubetest.MainCluster(m, &cluster)) }
//
// A cluster that does not start fails the package with the reason (for
// missing binaries: the command that builds them). When a test failed the
// logs are kept and their directory printed.
func MainCluster(m *testing.M, c **Cluster, opts ...Options) int {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	cl, err := StartClusterEnv(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubetest:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "kubetest: cluster started in %s (logs in %s)\n", cl.Startup.Round(time.Millisecond), cl.LogDir())
	*c = cl
	code := m.Run()
	if code != 0 {
		cl.Keep = true
		fmt.Fprintln(os.Stderr, "kubetest: the cluster's logs are kept in", cl.LogDir())
	}
	if err := cl.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "kubetest: stop cluster:", err)
	}
	return code
}
