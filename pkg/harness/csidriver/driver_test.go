package csidriver_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/stateguard/stateguard/pkg/harness/csidriver"
)

func dial(t *testing.T, d *csidriver.Driver) csi.ControllerClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+d.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return csi.NewControllerClient(conn)
}

var mount = []*csi.VolumeCapability{{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sums(t *testing.T, dir string) map[string]string {
	t.Helper()
	s, err := csidriver.TreeSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRestoreReturnsTheSnapshotsData writes files, snapshots the volume,
// changes the files and restores the snapshot into a new volume: the new
// volume holds the data as it was at the snapshot.
func TestRestoreReturnsTheSnapshotsData(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	ctx := t.Context()
	vol, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "data", VolumeCapabilities: mount})
	if err != nil {
		t.Fatal(err)
	}
	dir := d.VolumePath(vol.GetVolume().GetVolumeId())
	writeFiles(t, dir, map[string]string{"a.txt": "one", "sub/b.bin": "two"})
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	before := sums(t, dir)
	snap, err := c.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s1", SourceVolumeId: vol.GetVolume().GetVolumeId()})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.GetSnapshot().GetReadyToUse() {
		t.Fatal("snapshot not ready")
	}
	writeFiles(t, dir, map[string]string{"a.txt": "changed", "c.txt": "new"})
	if diff := cmp.Diff(before, sums(t, dir)); diff == "" {
		t.Fatal("changing the files changed no checksum")
	}
	restored, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: "restored", VolumeCapabilities: mount,
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, sums(t, d.VolumePath(restored.GetVolume().GetVolumeId()))); diff != "" {
		t.Errorf("restored data (-at snapshot +restored):\n%s", diff)
	}
	clone, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: "clone", VolumeCapabilities: mount,
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: vol.GetVolume().GetVolumeId()},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sums(t, dir), sums(t, d.VolumePath(clone.GetVolume().GetVolumeId()))); diff != "" {
		t.Errorf("clone (-source +clone):\n%s", diff)
	}
}

// TestInjectedFaults fails and delays calls by name, for the matching
// requests only, and clears them.
func TestInjectedFaults(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	ctx := t.Context()
	vol, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "data", VolumeCapabilities: mount})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	clearFail := d.Inject("CreateSnapshot", csidriver.Fault{
		Code: codes.ResourceExhausted, Message: "backend full",
		Match: func(req any) bool { return req.(*csi.CreateSnapshotRequest).GetName() == "doomed" },
	})
	_, err = c.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "doomed", SourceVolumeId: id})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || st.Message() != "backend full" {
		t.Errorf("faulted CreateSnapshot: %v", err)
	}
	if _, err := c.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "fine", SourceVolumeId: id}); err != nil {
		t.Errorf("unmatched CreateSnapshot: %v", err)
	}
	clearFail()
	if _, err := c.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "doomed", SourceVolumeId: id}); err != nil {
		t.Errorf("CreateSnapshot after clearing: %v", err)
	}
	if n := d.Calls("CreateSnapshot"); n != 3 {
		t.Errorf("%d CreateSnapshot calls counted, want 3", n)
	}

	d.Inject("DeleteSnapshot", csidriver.Fault{Delay: time.Hour, Times: 1})
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.DeleteSnapshot(short, &csi.DeleteSnapshotRequest{SnapshotId: "x"})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("delayed DeleteSnapshot: %v, want DeadlineExceeded", err)
	}
	if _, err := c.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "x"}); err != nil {
		t.Errorf("second DeleteSnapshot (fault used up): %v", err)
	}
}

// TestHeldCallsOfOneNamespace holds the CreateSnapshot calls the sidecars
// make for one namespace (the parameters of --extra-create-metadata) until
// released; another namespace's calls run.
func TestHeldCallsOfOneNamespace(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	ctx := t.Context()
	vol, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "data", VolumeCapabilities: mount,
		Parameters: map[string]string{csidriver.ParamPVCNamespace: "shop", csidriver.ParamPVCName: "data"}})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	hold := make(chan struct{})
	undo := d.Inject("CreateSnapshot", csidriver.Fault{Hold: hold, Match: csidriver.InNamespace("shop")})
	defer undo()
	snap := func(ns, name string) *csi.CreateSnapshotRequest {
		return &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: id,
			Parameters: map[string]string{csidriver.ParamSnapshotNamespace: ns, csidriver.ParamSnapshotName: name}}
	}
	if _, err := c.CreateSnapshot(ctx, snap("other", "free")); err != nil {
		t.Errorf("another namespace's CreateSnapshot: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.CreateSnapshot(ctx, snap("shop", "held"))
		done <- err
	}()
	// The held call has not returned while other calls go through.
	if _, err := c.CreateSnapshot(ctx, snap("other", "free-2")); err != nil {
		t.Errorf("another namespace's CreateSnapshot while one is held: %v", err)
	}
	for d.Calls("CreateSnapshot") < 3 { // the held call reached the driver
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("held CreateSnapshot returned before the release: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(hold)
	if err := <-done; err != nil {
		t.Errorf("released CreateSnapshot: %v", err)
	}
	if csidriver.InNamespace("shop")(&csi.DeleteSnapshotRequest{SnapshotId: "x"}) {
		t.Error("InNamespace matched a request that names no namespace")
	}
}
