package snapsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Driver is the CSI driver name snapsim writes into contents.
const Driver = "snapsim.stateguard.io"

// Options configure Run.
type Options struct {
	// Fail returns a non-empty error message for the snapshots that must
	// fail; nil fails none.
	Fail func(s *snapv1.VolumeSnapshot) string
	// Hold leaves the snapshots for which it returns true untouched, as a
	// slow CSI driver would; a later change to such a snapshot (a label
	// removed, say) makes snapsim look at it again. nil holds none.
	Hold func(s *snapv1.VolumeSnapshot) bool
	// RestoreSize is the size reported for every snapshot (default 1Gi).
	RestoreSize string
	// Now is the creation time to report (default time.Now).
	Now func() time.Time
	// Log receives one line per snapshot handled (default: discarded).
	Log *slog.Logger
}

// Run handles VolumeSnapshots in every namespace until ctx ends. It returns
// nil when ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	cs, err := snapclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("snapsim: %w", err)
	}
	if o.RestoreSize == "" {
		o.RestoreSize = "1Gi"
	}
	size, err := resource.ParseQuantity(o.RestoreSize)
	if err != nil {
		return fmt.Errorf("snapsim: restore size: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &sim{cs: cs, o: o, size: size}
	for ctx.Err() == nil {
		if err := s.listAndWatch(ctx); err != nil && ctx.Err() == nil {
			o.Log.Warn("snapsim: watch failed, retrying", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

type sim struct {
	cs   snapclient.Interface
	o    Options
	size resource.Quantity
}

func (s *sim) listAndWatch(ctx context.Context) error {
	list, err := s.cs.SnapshotV1().VolumeSnapshots("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range list.Items {
		s.handle(ctx, &list.Items[i])
	}
	w, err := s.cs.SnapshotV1().VolumeSnapshots("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errors.New("watch closed")
			}
			vs, isVS := ev.Object.(*snapv1.VolumeSnapshot)
			switch {
			case ev.Type == watch.Error:
				return fmt.Errorf("watch: %w", apierrors.FromObject(ev.Object))
			case !isVS:
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				s.handle(ctx, vs)
			case ev.Type == watch.Deleted:
				s.deleted(ctx, vs)
			}
		}
	}
}

func contentName(vs *snapv1.VolumeSnapshot) string { return "snapcontent-" + string(vs.UID) }

func (s *sim) handle(ctx context.Context, vs *snapv1.VolumeSnapshot) {
	if vs.DeletionTimestamp != nil || vs.Status != nil && (vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse || vs.Status.Error != nil) {
		return
	}
	if s.o.Hold != nil && s.o.Hold(vs) {
		return
	}
	log := s.o.Log.With("namespace", vs.Namespace, "volume_snapshot", vs.Name)
	if err := s.bind(ctx, vs); err != nil {
		log.Warn("snapsim: handle snapshot", "error", err)
		return
	}
	log.Info("snapsim: snapshot handled")
}

func (s *sim) bind(ctx context.Context, vs *snapv1.VolumeSnapshot) error {
	now := metav1.NewTime(s.o.Now().Truncate(time.Second))
	if s.o.Fail != nil {
		if msg := s.o.Fail(vs); msg != "" {
			vs = vs.DeepCopy()
			vs.Status = &snapv1.VolumeSnapshotStatus{ReadyToUse: ptr(false), Error: &snapv1.VolumeSnapshotError{Time: &now, Message: &msg}}
			_, err := s.cs.SnapshotV1().VolumeSnapshots(vs.Namespace).UpdateStatus(ctx, vs, metav1.UpdateOptions{})
			return err
		}
	}
	name := contentName(vs)
	if pre := vs.Spec.Source.VolumeSnapshotContentName; pre != nil {
		name = *pre // pre-provisioned: the content exists already
	} else {
		handle := fmt.Sprintf("%s/%s", vs.Namespace, deref(vs.Spec.Source.PersistentVolumeClaimName))
		vsc := &snapv1.VolumeSnapshotContent{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: snapv1.VolumeSnapshotContentSpec{
				VolumeSnapshotRef: corev1.ObjectReference{
					Kind: "VolumeSnapshot", APIVersion: snapv1.SchemeGroupVersion.String(),
					Namespace: vs.Namespace, Name: vs.Name, UID: vs.UID,
				},
				DeletionPolicy:          snapv1.VolumeSnapshotContentDelete,
				Driver:                  Driver,
				VolumeSnapshotClassName: vs.Spec.VolumeSnapshotClassName,
				Source:                  snapv1.VolumeSnapshotContentSource{VolumeHandle: &handle},
			},
		}
		if _, err := s.cs.SnapshotV1().VolumeSnapshotContents().Create(ctx, vsc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create content: %w", err)
		}
	}
	vsc, err := s.cs.SnapshotV1().VolumeSnapshotContents().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get content: %w", err)
	}
	if vsc.Status == nil || vsc.Status.ReadyToUse == nil || !*vsc.Status.ReadyToUse {
		handle := "snap-" + string(vs.UID)
		if vsc.Spec.Source.SnapshotHandle != nil {
			handle = *vsc.Spec.Source.SnapshotHandle
		}
		vsc.Status = &snapv1.VolumeSnapshotContentStatus{
			SnapshotHandle: &handle,
			CreationTime:   ptr(now.UnixNano()),
			RestoreSize:    ptr(s.size.Value()),
			ReadyToUse:     ptr(true),
		}
		if _, err := s.cs.SnapshotV1().VolumeSnapshotContents().UpdateStatus(ctx, vsc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("content status: %w", err)
		}
	}
	vs = vs.DeepCopy()
	size := s.size.DeepCopy()
	vs.Status = &snapv1.VolumeSnapshotStatus{
		BoundVolumeSnapshotContentName: &name,
		CreationTime:                   &now,
		ReadyToUse:                     ptr(true),
		RestoreSize:                    &size,
	}
	if _, err := s.cs.SnapshotV1().VolumeSnapshots(vs.Namespace).UpdateStatus(ctx, vs, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("snapshot status: %w", err)
	}
	return nil
}

// deleted removes the content snapsim created for a deleted snapshot, as
// the deletion policy Delete does.
func (s *sim) deleted(ctx context.Context, vs *snapv1.VolumeSnapshot) {
	if vs.Spec.Source.VolumeSnapshotContentName != nil {
		return
	}
	err := s.cs.SnapshotV1().VolumeSnapshotContents().Delete(ctx, contentName(vs), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		s.o.Log.Warn("snapsim: delete content", "name", contentName(vs), "error", err)
	}
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
