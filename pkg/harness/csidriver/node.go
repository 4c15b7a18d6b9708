package csidriver

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var _ csi.NodeServer = (*Driver)(nil)

// NodeGetCapabilities reports no optional node calls: there is no staging.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// NodeGetInfo reports the node and its topology.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.o.NodeID, AccessibleTopology: d.topology()}, nil
}

// NodePublishVolume makes the target path a symlink to the volume's
// directory: without a kubelet there is nothing to mount into, and a
// symlink shows the same files. Read-only publishing is not enforced.
func (d *Driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume id missing")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target path missing")
	case req.GetVolumeCapability() == nil:
		return nil, status.Error(codes.InvalidArgument, "volume capability missing")
	}
	if err := checkCapabilities([]*csi.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.volumes[req.GetVolumeId()]; !ok {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	target, dir := req.GetTargetPath(), d.VolumePath(req.GetVolumeId())
	if link, err := os.Readlink(target); err == nil {
		if link == dir {
			return &csi.NodePublishVolumeResponse{}, nil
		}
		return nil, status.Errorf(codes.AlreadyExists, "target %s holds another volume", target)
	}
	// The caller may have made the target as an empty directory, as a
	// kubelet does; the symlink takes its place.
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.FailedPrecondition, "target %s: %v", target, err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return nil, status.Errorf(codes.Internal, "target parent: %v", err)
	}
	if err := os.Symlink(dir, target); err != nil {
		return nil, status.Errorf(codes.Internal, "publish: %v", err)
	}
	d.published[target] = req.GetVolumeId()
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume removes the target path's symlink.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume id missing")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target path missing")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Remove(req.GetTargetPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "unpublish: %v", err)
	}
	delete(d.published, req.GetTargetPath())
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
