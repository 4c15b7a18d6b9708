package netns

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Net is a bridge in the test's namespace and namespaces attached to it.
type Net struct {
	tb     testing.TB
	prefix string
	subnet string // "10.231.7", the first three octets
	n      int
}

// New creates n network namespaces on a bridge of their own and removes
// them when the test ends. It fails the test, naming why, when not run as
// root or when the ip command is missing.
func New(tb testing.TB, n int) *Net {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatalf("netns: network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN); this test runs as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Fatalf("netns: the ip command (iproute2) is needed: %v", err)
	}
	sweep()
	nt := &Net{tb: tb, prefix: fmt.Sprintf("sg%d", os.Getpid()%10000000), n: n}
	subnet, err := freeSubnet()
	if err != nil {
		tb.Fatal(err)
	}
	nt.subnet = subnet
	tb.Cleanup(nt.remove)
	nt.ip("link", "add", nt.bridge(), "type", "bridge")
	nt.ip("addr", "add", subnet+".254/24", "dev", nt.bridge())
	nt.ip("link", "set", nt.bridge(), "up")
	for i := range n {
		ns, host, peer := nt.Name(i), nt.hostLink(i), fmt.Sprintf("%sn%d", nt.prefix, i)
		nt.ip("netns", "add", ns)
		nt.ip("link", "add", host, "type", "veth", "peer", "name", peer)
		nt.ip("link", "set", peer, "netns", ns)
		nt.ip("link", "set", host, "master", nt.bridge())
		nt.ip("link", "set", host, "up")
		nt.ip("-n", ns, "addr", "add", nt.Addr(i)+"/24", "dev", peer)
		nt.ip("-n", ns, "link", "set", peer, "up")
		nt.ip("-n", ns, "link", "set", "lo", "up")
	}
	return nt
}

// Name is the name of namespace i, as `ip netns` knows it.
func (nt *Net) Name(i int) string { return fmt.Sprintf("%s-%d", nt.prefix, i) }

// Addr is namespace i's address on the bridge.
func (nt *Net) Addr(i int) string { return fmt.Sprintf("%s.%d", nt.subnet, i+1) }

// HostAddr is the test's own address on the bridge.
func (nt *Net) HostAddr() string { return nt.subnet + ".254" }

// Command is exec.Command run inside namespace i (through `ip netns exec`,
// which execs name in place, so the process is the command itself).
func (nt *Net) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", nt.Name(i), name}, args...)...)
}

// Partition cuts namespace i off the bridge (its link set down): nothing
// reaches it and nothing leaves it until Heal.
func (nt *Net) Partition(i int) { nt.ip("link", "set", nt.hostLink(i), "down") }

// Heal puts namespace i back on the bridge.
func (nt *Net) Heal(i int) { nt.ip("link", "set", nt.hostLink(i), "up") }

func (nt *Net) bridge() string        { return nt.prefix + "b" }
func (nt *Net) hostLink(i int) string { return fmt.Sprintf("%sh%d", nt.prefix, i) }

func (nt *Net) ip(args ...string) {
	nt.tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		nt.tb.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// remove deletes what New made; deleting a veth's host end deletes its
// peer, and a namespace goes once no process holds it.
func (nt *Net) remove() {
	for i := range nt.n {
		_ = exec.Command("ip", "link", "del", nt.hostLink(i)).Run()
		if out, err := exec.Command("ip", "netns", "del", nt.Name(i)).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("No such file")) {
			nt.tb.Errorf("netns: removing %s: %v: %s", nt.Name(i), err, bytes.TrimSpace(out))
		}
	}
	_ = exec.Command("ip", "link", "del", nt.bridge()).Run()
}

// freeSubnet picks a 10.231.x.0/24 that no interface of this namespace
// holds, so tests running at once do not share one.
func freeSubnet() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if v4 := ipn.IP.To4(); v4 != nil {
				used[fmt.Sprintf("%d.%d.%d", v4[0], v4[1], v4[2])] = true
			}
		}
	}
	start := os.Getpid() % 250
	for k := range 250 {
		s := fmt.Sprintf("10.231.%d", (start+k)%250)
		if !used[s] {
			return s, nil
		}
	}
	return "", fmt.Errorf("netns: no free 10.231.x.0/24")
}

// leftover matches the names New gives (sg<pid>-<i>, sg<pid>b, sg<pid>h<i>).
var leftover = regexp.MustCompile(`^sg([0-9]+)(-[0-9]+|b|h[0-9]+)$`)

// sweep removes the namespaces and links of test processes that died
// before their cleanup ran (killed by a timeout, SIGKILL): they would
// otherwise stay until the machine restarts.
func sweep() {
	dead := func(name string) bool {
		m := leftover.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() {
			return false
		}
		_, err = os.Stat("/proc/" + m[1])
		return os.IsNotExist(err)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && dead(f[0]) {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return
	}
	for _, i := range ifs {
		if dead(i.Name) {
			_ = exec.Command("ip", "link", "del", i.Name).Run()
		}
	}
}
