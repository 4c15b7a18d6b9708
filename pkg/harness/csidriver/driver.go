package csidriver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// Defaults for Options.
const (
	DefaultName        = "csi.stateguard.io"
	DefaultVersion     = "0.1.0"
	DefaultNodeID      = "node-1"
	DefaultTopologyKey = "topology.csi.stateguard.io/node"
	DefaultCapacity    = 1 << 40 // 1 TiB
	DefaultVolumeSize  = 1 << 30 // 1 GiB
)

// Options configure New.
type Options struct {
	// Name is the driver name reported by GetPluginInfo (DefaultName).
	Name string
	// Version is the vendor version reported by GetPluginInfo
	// (DefaultVersion); csi-snapshotter refuses a driver without one.
	Version string
	// Root holds the volumes (Root/volumes/<id>/) and snapshots
	// (Root/snapshots/<id>.tar). Required.
	Root string
	// NodeID is the one node this driver serves (DefaultNodeID).
	NodeID string
	// TopologyKey is the topology segment key; every volume is accessible
	// from {TopologyKey: NodeID} (DefaultTopologyKey).
	TopologyKey string
	// Capacity is the total bytes GetCapacity starts from (DefaultCapacity).
	Capacity int64
	// Log receives one line per call (default: discarded).
	Log *slog.Logger
}

// Driver is a running CSI driver. Its methods are safe for concurrent use.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	o      Options
	log    *slog.Logger
	faults faults

	mu        sync.Mutex
	volumes   map[string]*volume   // by id
	snapshots map[string]*snapshot // by id
	published map[string]string    // target path -> volume id
	seq       int64                // creation order, for ListSnapshots paging

	srv      *grpc.Server
	endpoint string
	done     chan error
}

// New returns a driver that is not serving yet; see Start.
func New(o Options) (*Driver, error) {
	if o.Root == "" {
		return nil, errors.New("csidriver: Options.Root is required")
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.NodeID == "" {
		o.NodeID = DefaultNodeID
	}
	if o.TopologyKey == "" {
		o.TopologyKey = DefaultTopologyKey
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{"volumes", "snapshots"} {
		if err := os.MkdirAll(filepath.Join(o.Root, d), 0o755); err != nil {
			return nil, fmt.Errorf("csidriver: %w", err)
		}
	}
	return &Driver{
		o:         o,
		log:       o.Log.With("csi_driver", o.Name),
		volumes:   map[string]*volume{},
		snapshots: map[string]*snapshot{},
		published: map[string]string{},
	}, nil
}

// Start serves the driver on the unix socket at path (removed first if it
// is left over) until Stop.
func (d *Driver) Start(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("csidriver: %w", err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("csidriver: listen: %w", err)
	}
	d.srv = grpc.NewServer(grpc.UnaryInterceptor(d.intercept))
	csi.RegisterIdentityServer(d.srv, d)
	csi.RegisterControllerServer(d.srv, d)
	csi.RegisterNodeServer(d.srv, d)
	d.endpoint = path
	d.done = make(chan error, 1)
	go func() { d.done <- d.srv.Serve(lis) }()
	d.log.Info("csi driver serving", "endpoint", path, "node_id", d.o.NodeID)
	return nil
}

// Stop stops serving; calls in flight are cancelled.
func (d *Driver) Stop() {
	if d.srv == nil {
		return
	}
	d.srv.Stop()
	if err := <-d.done; err != nil {
		d.log.Warn("csi driver stopped", "error", err)
	}
	d.srv = nil
}

// Name is the driver name.
func (d *Driver) Name() string { return d.o.Name }

// NodeID is the node this driver serves.
func (d *Driver) NodeID() string { return d.o.NodeID }

// TopologyKey is the key of the topology segment of every volume.
func (d *Driver) TopologyKey() string { return d.o.TopologyKey }

// Endpoint is the socket path the driver serves on.
func (d *Driver) Endpoint() string { return d.endpoint }

// VolumePath is the directory holding volume id's data (a
// PersistentVolume's spec.csi.volumeHandle). It does not check that the
// volume exists.
func (d *Driver) VolumePath(id string) string {
	return filepath.Join(d.o.Root, "volumes", filepath.Base(id))
}

// SnapshotPath is the archive holding snapshot id (a
// VolumeSnapshotContent's status.snapshotHandle).
func (d *Driver) SnapshotPath(id string) string {
	return filepath.Join(d.o.Root, "snapshots", filepath.Base(id)+".tar")
}
