package stack

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// helperEnv makes the test binary a process that runs the stack's cluster
// and waits to be killed.
const helperEnv = "STATEGUARD_STACK_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "cluster" {
		os.Exit(controlPlaneHelper())
	}
	os.Exit(m.Run())
}

// controlPlaneHelper starts the cluster and prints the pids of the guarded
// control plane, then those of the cluster's other processes.
func controlPlaneHelper() int {
	c, d, err := startCluster(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	var others []int
	for _, p := range c.Processes() {
		others = append(others, p.Pid())
	}
	fmt.Println("PIDS", strings.Trim(fmt.Sprint(d.pgids), "[]"))
	fmt.Println("OTHERS", strings.Trim(fmt.Sprint(others), "[]"))
	select {}
}

// alive says whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z'
}

// TestClusterDiesWithItsProcessOnSIGKILL kills the process running the
// stack's cluster: the watchdog stops etcd and kube-apiserver, the parent-
// death signal the controllers, KWOK and the CSI sidecars.
func TestClusterDiesWithItsProcessOnSIGKILL(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=cluster")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rd := bufio.NewReader(out)
	readPIDs := func(label string) []int {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("helper said nothing: %v", err)
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != label {
			t.Fatalf("helper: %s", line)
		}
		var pids []int
		for _, f := range fields[1:] {
			p, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, p)
		}
		return pids
	}
	pids := readPIDs("PIDS")
	if len(pids) != 2 {
		t.Fatalf("guarded %v, want etcd and kube-apiserver", pids)
	}
	others := readPIDs("OTHERS")
	if len(others) != len(kubetest.ClusterBinaries) {
		t.Fatalf("cluster processes %v, want one per %v", others, kubetest.ClusterBinaries)
	}
	pids = append(pids, others...)
	t.Cleanup(func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	for _, p := range pids {
		if !alive(p) {
			t.Fatalf("cluster process %d not running before the kill", p)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The watchdog sends SIGTERM, then SIGKILL after 5 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster processes %v still run 30 s after their parent was killed", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestChildPIDsFindsOnlyChildrenByName(t *testing.T) {
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	got, err := childPIDs(os.Getpid(), []string{"sleep"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != sleep.Process.Pid {
		t.Errorf("childPIDs(sleep) = %v, want [%d]", got, sleep.Process.Pid)
	}
	if got, _ := childPIDs(os.Getpid(), []string{"etcd"}); len(got) != 0 {
		t.Errorf("childPIDs(etcd) = %v, want none", got)
	}
	if got, _ := childPIDs(1, []string{"sleep"}); len(got) != 0 {
		t.Errorf("childPIDs of pid 1 = %v, want none (sleep is our child)", got)
	}
}
