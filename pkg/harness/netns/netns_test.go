package netns

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A process in a namespace reaches the test over the bridge; partitioned
// it does not, healed it does again; the namespaces are gone after the
// test.
func TestNamespacesReachTheTestUntilPartitioned(t *testing.T) {
	var names []string
	t.Run("net", func(t *testing.T) {
		nt := New(t, 2)
		names = []string{nt.Name(0), nt.Name(1)}
		l, err := net.Listen("tcp", nt.HostAddr()+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		got := make(chan string, 4)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				got <- line
			}
		}()
		send := func(i int) error {
			// bash's /dev/tcp: no other client needed in the namespace.
			return nt.Command(i, "timeout", "3", "bash", "-c", "echo from-"+nt.Addr(i)+" >/dev/tcp/"+nt.HostAddr()+"/"+portOf(l)).Run()
		}
		for i := range 2 {
			if err := send(i); err != nil {
				t.Fatalf("namespace %d cannot reach the test: %v", i, err)
			}
			if line := <-got; line != "from-"+nt.Addr(i)+"\n" {
				t.Errorf("namespace %d sent %q", i, line)
			}
		}
		nt.Partition(1)
		if err := send(1); err == nil {
			t.Fatal("a partitioned namespace still reaches the test")
		}
		if err := send(0); err != nil {
			t.Fatalf("namespace 0 lost the bridge when 1 was partitioned: %v", err)
		}
		<-got
		nt.Heal(1)
		deadline := time.Now().Add(30 * time.Second)
		for send(1) != nil {
			if time.Now().After(deadline) {
				t.Fatal("a healed namespace does not reach the test again")
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if containsWord(string(out), n) {
			t.Errorf("namespace %s left behind", n)
		}
	}
}

func portOf(l net.Listener) string {
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// A namespace and links left by a test process that died before its
// cleanup are removed by the next New.
func TestNewSweepsWhatADeadTestLeft(t *testing.T) {
	// A pid above the kernel's limit (pid_max ≤ 4194304) is never alive.
	const dead = "sg9999999"
	for _, args := range [][]string{{"netns", "add", dead + "-0"}, {"link", "add", dead + "b", "type", "bridge"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	New(t, 1)
	out, _ := exec.Command("ip", "netns", "list").Output()
	if containsWord(string(out), dead+"-0") {
		t.Error("the dead test's namespace is still there")
	}
	if err := exec.Command("ip", "link", "show", dead+"b").Run(); err == nil {
		t.Error("the dead test's bridge is still there")
	}
}
