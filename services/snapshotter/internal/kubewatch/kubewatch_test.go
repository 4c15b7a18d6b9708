package kubewatch

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// TestTriggerWakesOnAChangeOfTheWatchedObjects: against a real API
// server, a ConfigMap created in the watched namespace wakes the loop; one in
// another namespace does not.
func TestTriggerWakesOnAChangeOfTheWatchedObjects(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{WithoutCertManager: true})
	w, err := client.NewWithWatch(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	for _, ns := range []string{"watched", "other"} {
		if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	trigger := make(chan struct{}, 1)
	go func() {
		defer close(done)
		Trigger(ctx, slog.New(slog.DiscardHandler), "config maps", w, &corev1.ConfigMapList{}, trigger, client.InNamespace("watched"))
	}()
	create := func(ns, name string) {
		t.Helper()
		if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The watch starts asynchronously: create in the watched namespace
	// until a wake-up comes (each create is a change it must hear of once
	// it runs).
	deadline := time.After(30 * time.Second)
	for i := 0; ; i++ {
		create("watched", "cm-"+string(rune('a'+i%26))+time.Now().Format("150405.000000"))
		select {
		case <-trigger:
		case <-time.After(500 * time.Millisecond):
			continue
		case <-deadline:
			t.Fatal("no wake-up for ConfigMaps created in the watched namespace")
		}
		break
	}
	// Drain what the earlier creates left until a second passes quietly,
	// then a change elsewhere must not wake the loop while one in the
	// watched namespace does.
	for quiet := false; !quiet; {
		select {
		case <-trigger:
		case <-time.After(time.Second):
			quiet = true
		}
	}
	create("other", "elsewhere")
	select {
	case <-trigger:
		t.Fatal("a ConfigMap in another namespace woke the loop")
	case <-time.After(time.Second):
	}
	create("watched", "here")
	select {
	case <-trigger:
	case <-time.After(30 * time.Second):
		t.Fatal("no wake-up for a ConfigMap created in the watched namespace")
	}
}
