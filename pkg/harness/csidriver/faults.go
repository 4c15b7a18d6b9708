package csidriver

import (
	"context"
	"path"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Fault changes what one CSI call does, for tests: it waits Delay (or
// until the caller gives up), then fails with Code and Message unless Code
// is codes.OK, in which case the call runs as usual.
type Fault struct {
	// Code is the gRPC code to fail with; codes.OK (the zero value) lets
	// the call run after the delay.
	Code codes.Code
	// Message is the error message the caller sees.
	Message string
	// Delay is how long the call waits before it fails or runs.
	Delay time.Duration
	// Hold, when not nil, keeps the call waiting after Delay until Hold is
	// closed (or the caller gives up): a storage system that is slow for
	// as long as the test wants.
	Hold <-chan struct{}
	// Times is how many matching calls the fault applies to; 0 is every
	// call until the fault is cleared.
	Times int
	// Match selects the calls (the request is the call's *csi.XRequest);
	// nil matches every call of the method.
	Match func(req any) bool
}

type injected struct {
	Fault
	used int
}

type faults struct {
	mu     sync.Mutex
	byName map[string][]*injected
	calls  map[string]int
}

// Inject applies f to the calls named method ("CreateSnapshot",
// "CreateVolume", ...), after the faults injected before it for that
// method. The returned function clears it.
func (d *Driver) Inject(method string, f Fault) (clear func()) {
	fs := &d.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.byName == nil {
		fs.byName = map[string][]*injected{}
	}
	in := &injected{Fault: f}
	fs.byName[method] = append(fs.byName[method], in)
	return func() {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		list := fs.byName[method]
		for i, x := range list {
			if x == in {
				fs.byName[method] = append(list[:i:i], list[i+1:]...)
				return
			}
		}
	}
}

// Calls is how many times method was called (faulted calls included).
func (d *Driver) Calls(method string) int {
	d.faults.mu.Lock()
	defer d.faults.mu.Unlock()
	return d.faults.calls[method]
}

// take counts a call and returns the fault that applies to it, if any.
func (fs *faults) take(method string, req any) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.calls == nil {
		fs.calls = map[string]int{}
	}
	fs.calls[method]++
	for _, in := range fs.byName[method] {
		if in.Times > 0 && in.used >= in.Times {
			continue
		}
		if in.Match != nil && !in.Match(req) {
			continue
		}
		in.used++
		return in.Fault, true
	}
	return Fault{}, false
}

// Parameters the CSI sidecars add to CreateSnapshot and CreateVolume when
// run with --extra-create-metadata (kubetest's cluster runs them so).
const (
	ParamSnapshotNamespace = "csi.storage.k8s.io/volumesnapshot/namespace"
	ParamSnapshotName      = "csi.storage.k8s.io/volumesnapshot/name"
	ParamPVCNamespace      = "csi.storage.k8s.io/pvc/namespace"
	ParamPVCName           = "csi.storage.k8s.io/pvc/name"
)

// InNamespace is a Fault.Match for the CreateSnapshot and CreateVolume
// calls made for objects in namespace ns, so that tests sharing a cluster
// fault only their own calls.
func InNamespace(ns string) func(req any) bool {
	return func(req any) bool {
		var params map[string]string
		switch r := req.(type) {
		case *csi.CreateSnapshotRequest:
			params = r.GetParameters()
		case *csi.CreateVolumeRequest:
			params = r.GetParameters()
		default:
			return false
		}
		return params[ParamSnapshotNamespace] == ns || params[ParamPVCNamespace] == ns
	}
}

// intercept applies the injected faults and logs every call.
func (d *Driver) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := path.Base(info.FullMethod)
	start := time.Now()
	resp, err := d.faulted(ctx, method, req, handler)
	d.log.Info("csi call", "method", method, "code", status.Code(err).String(), "error", errString(err), "duration_ms", time.Since(start).Milliseconds())
	return resp, err
}

func (d *Driver) faulted(ctx context.Context, method string, req any, handler grpc.UnaryHandler) (any, error) {
	f, ok := d.faults.take(method, req)
	if !ok {
		return handler(ctx, req)
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-t.C:
		}
	}
	if f.Hold != nil {
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-f.Hold:
		}
	}
	if f.Code != codes.OK {
		return nil, status.Error(f.Code, f.Message)
	}
	return handler(ctx, req)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return status.Convert(err).Message()
}
