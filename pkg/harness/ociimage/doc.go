// Package ociimage builds the container images of stateguard's services
// without a container engine: a static binary on an empty base, with the
// CA certificates, a non-root user and the OCI labels, assembled with
// go-containerregistry (mutate on empty.Image) and written as an archive
// that `nerdctl load`, `ctr images import` and `docker load` read.
//
// pkg/harness/cmd/images is the command (`make images`).
package ociimage
