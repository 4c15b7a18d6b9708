package kubewatch

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// retry is how long a watch that could not start waits before the next try.
const retry = 5 * time.Second

// Trigger watches the objects of list's kind (narrowed by opts) until ctx
// ends and sends a wake-up on trigger for every change without blocking,
// so a loop that is busy gets one wake-up for many changes. A watch that
// ends or fails is started again (after retry when it could not start, with
// a log line naming what), so the loop never stops hearing of changes.
func Trigger(ctx context.Context, log *slog.Logger, what string, w client.WithWatch, list client.ObjectList, trigger chan<- struct{}, opts ...client.ListOption) {
	for ctx.Err() == nil {
		wi, err := w.Watch(ctx, list, opts...)
		if err != nil {
			log.Warn("watch "+what, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			continue
		}
		for ev := range wi.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			select {
			case trigger <- struct{}{}:
			default:
			}
		}
		wi.Stop()
	}
}
