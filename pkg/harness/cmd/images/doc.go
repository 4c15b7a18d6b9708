// Command images builds the container images of the compose stack without
// a container engine (`make images`): each service (sastingest,
// certwatcher, snapshotter, correlator, console) and nats-server (from the
// Go module proxy, the version pkg/harness requires) built static with
// CGO_ENABLED=0, put on an empty base with the CA certificates and a
// non-root user by pkg/harness/ociimage, and written into one archive:
//
//	go run ./pkg/harness/cmd/images -out bin/images.tar
//	nerdctl load -i bin/images.tar     # or: ctr images import, docker load
//
// The images are tagged ghcr.io/stateguard/<name>:dev (-registry, -tag),
// the names docker-compose.yaml uses.
package main
