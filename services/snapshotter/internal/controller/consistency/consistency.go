package consistency

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
	"github.com/stateguard/stateguard/services/snapshotter/internal/metrics"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
)

// Phases of a hook.
const (
	Pre  = "pre"
	Post = "post"
)

// Runner runs a policy's hooks.
type Runner struct {
	Client  client.Client
	Hooks   hooks.Executor
	Clock   clock.PassiveClock
	Metrics *metrics.Metrics
}

// Tolerated is the rule of which hook failures a snapshot survives: a hook
// with onError: Continue, and every post hook (the snapshot exists by
// then). Any other failure stops the snapshot.
func Tolerated(h v1alpha1.Hook, phase string) bool {
	return h.OnError == v1alpha1.OnErrorContinue || phase == Post
}

// Pre runs p's pre hooks in pods. It returns the failures that were
// tolerated and the first that was not (then the snapshot must not be
// taken, and the caller runs Post to undo what the pre hooks did).
func (r *Runner) Pre(ctx context.Context, log *slog.Logger, p *v1alpha1.SnapshotPolicy, spec policy.Spec, pods []corev1.Pod) ([]string, error) {
	return r.run(ctx, log, p, Pre, p.Spec.Hooks.Pre, spec.PreTimeouts, pods)
}

// Post runs p's post hooks in pods. Their failures never fail the
// snapshot (it exists already): they are logged and, when vs is given,
// appended to its hook-errors annotation.
func (r *Runner) Post(ctx context.Context, log *slog.Logger, p *v1alpha1.SnapshotPolicy, spec policy.Spec, pods []corev1.Pod, vs *snapv1.VolumeSnapshot) {
	failures, _ := r.run(ctx, log, p, Post, p.Spec.Hooks.Post, spec.PostTimeouts, pods) // post hooks are always tolerated
	if len(failures) == 0 || vs == nil {
		return
	}
	orig := vs.DeepCopy()
	if prev := vs.Annotations[v1alpha1.AnnotationHookErrors]; prev != "" {
		failures = append([]string{prev}, failures...)
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[v1alpha1.AnnotationHookErrors] = strings.Join(failures, "; ")
	if err := r.Client.Patch(ctx, vs, client.MergeFrom(orig)); err != nil {
		log.Warn("record post hook failures", "error", err)
	}
}

// run runs hs in every running pod, each bounded by its timeout. It returns
// the failures that were tolerated and the first that was not.
func (r *Runner) run(ctx context.Context, log *slog.Logger, p *v1alpha1.SnapshotPolicy, phase string, hs []v1alpha1.Hook, timeouts []time.Duration, pods []corev1.Pod) ([]string, error) {
	var ignored []string
	for i := range pods {
		pod := &pods[i]
		if pod.Status.Phase != corev1.PodRunning {
			continue // no running container to quiesce
		}
		for i, h := range hs {
			err := r.exec(ctx, p, phase, pod, h, timeouts[i])
			if err == nil {
				continue
			}
			err = fmt.Errorf("%s hook %q in pod %s: %w", phase, strings.Join(h.Command, " "), pod.Name, err)
			if Tolerated(h, phase) {
				log.Warn("hook failed; continuing", "phase", phase, "pod", pod.Name, "error", err)
				ignored = append(ignored, err.Error())
				continue
			}
			return ignored, err
		}
	}
	return ignored, nil
}

// exec runs one hook in pod within timeout and times it.
func (r *Runner) exec(ctx context.Context, p *v1alpha1.SnapshotPolicy, phase string, pod *corev1.Pod, h v1alpha1.Hook, timeout time.Duration) error {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := r.Clock.Now()
	err := r.Hooks.Exec(hctx, pod, h.Container, h.Command)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	r.Metrics.HookDuration.WithLabelValues(p.Namespace, p.Name, phase, outcome).Observe(r.Clock.Since(start).Seconds())
	return err
}
