package hooks

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// DefaultTimeout bounds a hook without a timeout.
const DefaultTimeout = 30 * time.Second

// maxOutput bounds the output kept for error messages.
const maxOutput = 4096

// Executor runs a command in a container of a pod.
type Executor interface {
	Exec(ctx context.Context, pod *corev1.Pod, container string, command []string) error
}

// Exec runs commands through the pods/exec subresource.
type Exec struct {
	Config *rest.Config
	Client kubernetes.Interface
}

var _ Executor = (*Exec)(nil)

// NewExec returns an Exec for cfg.
func NewExec(cfg *rest.Config) (*Exec, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Exec{Config: cfg, Client: cs}, nil
}

// Exec runs command in container (the first one when empty) of pod and
// returns an error holding the command's output when it fails.
func (e *Exec) Exec(ctx context.Context, pod *corev1.Pod, container string, command []string) error {
	if container == "" && len(pod.Spec.Containers) > 0 {
		container = pod.Spec.Containers[0].Name
	}
	req := e.Client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   command,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(e.Config, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("exec in %s/%s: %w", pod.Name, container, err)
	}
	var out limitedBuffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
	if err != nil {
		if s := strings.TrimSpace(out.String()); s != "" {
			return fmt.Errorf("exec %q in %s/%s: %w: %s", command[0], pod.Name, container, err, s)
		}
		return fmt.Errorf("exec %q in %s/%s: %w", command[0], pod.Name, container, err)
	}
	return nil
}

type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
