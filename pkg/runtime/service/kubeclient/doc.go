// Package kubeclient holds what every stateguard service that talks to
// Kubernetes does the same way: Config loads the client configuration (a
// kubeconfig file, or the in-cluster service account), and RouteKlog sends
// client-go's klog output into the service's slog logger, once per process.
package kubeclient
