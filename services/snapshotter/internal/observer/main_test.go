package observer_test

import (
	"os"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// cluster is the package's one cluster: the pods the observer sees are
// made by the real Deployment and ReplicaSet controllers and run by KWOK's
// node, which reports their image digests.
var cluster *kubetest.Cluster

func TestMain(m *testing.M) {
	os.Exit(kubetest.MainCluster(m, &cluster, kubetest.Options{WithoutCertManager: true}))
}
