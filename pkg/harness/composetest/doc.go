// Package composetest brings docker-compose.yaml up on containerd with
// `nerdctl compose` — no Docker engine — and checks the stack works: a
// SARIF posted to the stack's ingest is seen as its event on the stack's
// NATS and as the upload in the correlator's API; then the stack is
// brought down and nothing is left running.
//
// The test builds with the tag compose and runs as `make compose-test`
// (root is needed: containerd, runc and CNI bridge networking). It starts
// its own containerd (Debian's package, `bash hack/tools.sh compose`) with
// its own socket, root and state under a temporary directory, and uses
// nerdctl built from the Go module proxy (bin/nerdctl); the machine's
// containerd, if any, is not touched.
package composetest
