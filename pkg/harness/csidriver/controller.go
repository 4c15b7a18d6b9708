package csidriver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var _ csi.ControllerServer = (*Driver)(nil)

type volume struct {
	id, name string
	size     int64
	source   *csi.VolumeContentSource
}

type snapshot struct {
	id, name, source string
	size             int64
	created          time.Time
	seq              int64
}

// idFor derives a stable id from a name, so a repeated create finds the
// same volume or snapshot and the id is safe as a file name.
func idFor(prefix, name string) string {
	sum := sha256.Sum256([]byte(name))
	return prefix + hex.EncodeToString(sum[:10])
}

// ControllerGetCapabilities reports volumes, snapshots, clones and capacity.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// checkCapabilities accepts mount volumes in any access mode: a directory
// can be shared.
func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	for _, c := range caps {
		if c.GetBlock() != nil {
			return status.Error(codes.InvalidArgument, "block volumes are not supported: volumes are directories")
		}
		if c.GetMount() == nil {
			return status.Error(codes.InvalidArgument, "access type missing")
		}
		if c.GetAccessMode() == nil {
			return status.Error(codes.InvalidArgument, "access mode missing")
		}
	}
	return nil
}

// volumeSize picks a volume's size from the requested range.
func volumeSize(r *csi.CapacityRange) (int64, error) {
	req, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	switch {
	case req < 0 || limit < 0:
		return 0, status.Error(codes.InvalidArgument, "negative capacity")
	case limit > 0 && limit < req:
		return 0, status.Errorf(codes.InvalidArgument, "limit %d below required %d bytes", limit, req)
	case req > 0:
		return req, nil
	case limit > 0 && limit < DefaultVolumeSize:
		return limit, nil
	default:
		return DefaultVolumeSize, nil
	}
}

func (d *Driver) topology() *csi.Topology {
	return &csi.Topology{Segments: map[string]string{d.o.TopologyKey: d.o.NodeID}}
}

// reachable says whether the requirement admits this driver's node.
func (d *Driver) reachable(req *csi.TopologyRequirement) bool {
	if len(req.GetRequisite()) == 0 {
		return true
	}
	for _, t := range req.GetRequisite() {
		if v, ok := t.GetSegments()[d.o.TopologyKey]; ok && v == d.o.NodeID {
			return true
		}
	}
	return false
}

func (d *Driver) used() int64 {
	var n int64
	for _, v := range d.volumes {
		n += v.size
	}
	return n
}

func sameSource(a, b *csi.VolumeContentSource) bool {
	return a.GetSnapshot().GetSnapshotId() == b.GetSnapshot().GetSnapshotId() &&
		a.GetVolume().GetVolumeId() == b.GetVolume().GetVolumeId()
}

// CreateVolume makes a directory, empty or filled from a snapshot's
// archive or another volume.
func (d *Driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name missing")
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	sz, err := volumeSize(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if !d.reachable(req.GetAccessibilityRequirements()) {
		return nil, status.Errorf(codes.ResourceExhausted, "no requisite topology holds %s=%s", d.o.TopologyKey, d.o.NodeID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := idFor("vol-", req.GetName())
	if v, ok := d.volumes[id]; ok {
		r := req.GetCapacityRange()
		if v.size < r.GetRequiredBytes() || r.GetLimitBytes() > 0 && v.size > r.GetLimitBytes() || !sameSource(v.source, req.GetVolumeContentSource()) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with %d bytes and another source", req.GetName(), v.size)
		}
		return &csi.CreateVolumeResponse{Volume: d.csiVolume(v)}, nil
	}
	if d.used()+sz > d.o.Capacity {
		return nil, status.Errorf(codes.OutOfRange, "%d bytes requested, %d free", sz, d.o.Capacity-d.used())
	}
	dir := d.VolumePath(id)
	if err := d.fill(dir, req.GetVolumeContentSource(), sz); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	v := &volume{id: id, name: req.GetName(), size: sz, source: req.GetVolumeContentSource()}
	d.volumes[id] = v
	return &csi.CreateVolumeResponse{Volume: d.csiVolume(v)}, nil
}

// fill creates dir with the content of src (nil: empty).
func (d *Driver) fill(dir string, src *csi.VolumeContentSource, sz int64) error {
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		return status.Errorf(codes.Internal, "create volume directory: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return status.Errorf(codes.Internal, "create volume directory: %v", err)
	}
	switch {
	case src.GetSnapshot() != nil:
		s, ok := d.snapshots[src.GetSnapshot().GetSnapshotId()]
		if !ok {
			return status.Errorf(codes.NotFound, "source snapshot %q not found", src.GetSnapshot().GetSnapshotId())
		}
		if s.size > sz {
			return status.Errorf(codes.OutOfRange, "snapshot %q needs %d bytes, volume has %d", s.id, s.size, sz)
		}
		if err := extract(d.SnapshotPath(s.id), dir); err != nil {
			return status.Errorf(codes.Internal, "restore snapshot %q: %v", s.id, err)
		}
	case src.GetVolume() != nil:
		v, ok := d.volumes[src.GetVolume().GetVolumeId()]
		if !ok {
			return status.Errorf(codes.NotFound, "source volume %q not found", src.GetVolume().GetVolumeId())
		}
		if v.size > sz {
			return status.Errorf(codes.OutOfRange, "volume %q needs %d bytes, clone has %d", v.id, v.size, sz)
		}
		if err := copyTree(d.VolumePath(v.id), dir); err != nil {
			return status.Errorf(codes.Internal, "clone volume %q: %v", v.id, err)
		}
	}
	return nil
}

func (d *Driver) csiVolume(v *volume) *csi.Volume {
	return &csi.Volume{
		VolumeId:           v.id,
		CapacityBytes:      v.size,
		ContentSource:      v.source,
		AccessibleTopology: []*csi.Topology{d.topology()},
	}
}

// DeleteVolume removes a volume's directory; an unknown volume is gone
// already.
func (d *Driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id missing")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.RemoveAll(d.VolumePath(req.GetVolumeId())); err != nil {
		return nil, status.Errorf(codes.Internal, "delete volume: %v", err)
	}
	delete(d.volumes, req.GetVolumeId())
	return &csi.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms mount capabilities of a known volume.
func (d *Driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id missing")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	d.mu.Lock()
	_, ok := d.volumes[req.GetVolumeId()]
	d.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// GetCapacity reports the bytes not yet given to volumes, on this node's
// topology (none elsewhere).
func (d *Driver) GetCapacity(_ context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	if t := req.GetAccessibleTopology(); t != nil && t.GetSegments()[d.o.TopologyKey] != d.o.NodeID {
		return &csi.GetCapacityResponse{}, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return &csi.GetCapacityResponse{AvailableCapacity: d.o.Capacity - d.used()}, nil
}

// CreateSnapshot archives a volume's directory; the snapshot is ready when
// the call returns.
func (d *Driver) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name missing")
	}
	if req.GetSourceVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "source volume id missing")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id := idFor("snap-", req.GetName())
	if s, ok := d.snapshots[id]; ok {
		if s.source != req.GetSourceVolumeId() {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for volume %q", req.GetName(), s.source)
		}
		return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
	}
	v, ok := d.volumes[req.GetSourceVolumeId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "source volume %q not found", req.GetSourceVolumeId())
	}
	if err := archive(d.VolumePath(v.id), d.SnapshotPath(id)); err != nil {
		return nil, status.Errorf(codes.Internal, "snapshot volume %q: %v", v.id, err)
	}
	d.seq++
	s := &snapshot{id: id, name: req.GetName(), source: v.id, size: v.size, created: time.Now(), seq: d.seq}
	d.snapshots[id] = s
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
}

func csiSnapshot(s *snapshot) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     s.id,
		SourceVolumeId: s.source,
		SizeBytes:      s.size,
		CreationTime:   timestamppb.New(s.created),
		ReadyToUse:     true,
	}
}

// DeleteSnapshot removes a snapshot's archive; an unknown snapshot is gone
// already.
func (d *Driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot id missing")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Remove(d.SnapshotPath(req.GetSnapshotId())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "delete snapshot: %v", err)
	}
	delete(d.snapshots, req.GetSnapshotId())
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots lists snapshots in creation order, filtered by snapshot or
// source volume id, in pages whose token is the index of the next entry.
func (d *Driver) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	d.mu.Lock()
	var list []*snapshot
	for _, s := range d.snapshots {
		if id := req.GetSnapshotId(); id != "" && s.id != id {
			continue
		}
		if src := req.GetSourceVolumeId(); src != "" && s.source != src {
			continue
		}
		list = append(list, s)
	}
	d.mu.Unlock()
	slices.SortFunc(list, func(a, b *snapshot) int { return int(a.seq - b.seq) })
	start := 0
	if tok := req.GetStartingToken(); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(list) {
			return nil, status.Errorf(codes.Aborted, "invalid starting token %q", tok)
		}
		start = n
	}
	end := len(list)
	if m := int(req.GetMaxEntries()); m > 0 && start+m < end {
		end = start + m
	}
	resp := &csi.ListSnapshotsResponse{}
	for _, s := range list[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(s)})
	}
	if end < len(list) {
		resp.NextToken = strconv.Itoa(end)
	}
	return resp, nil
}
