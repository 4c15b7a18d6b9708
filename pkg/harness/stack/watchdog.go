package stack

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// controlPlaneBinaries are the processes envtest starts as children of this
// process.
var controlPlaneBinaries = []string{"etcd", "kube-apiserver"}

// childPIDs lists the running children of parent whose executable's base name
// is one of names, read from /proc. envtest starts etcd and kube-apiserver
// without telling their process ids, so this is how the watchdog learns them.
func childPIDs(parent int, names []string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := procStat(pid)
		if !ok || ppid != parent || state == 'Z' {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if slices.Contains(names, filepath.Base(exe)) {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out, nil
}

// procStat reads the parent and the state of pid from /proc/pid/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid …": comm may hold spaces and parentheses, so
	// the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	return ppid, f[0][0], true
}

// watchdog is a child process that kills the control plane when this
// process dies, even by SIGKILL. envtest starts etcd and kube-apiserver in
// process groups of their own and offers no parent-death signal, so nothing
// else would stop them. The watchdog holds the read end of a pipe whose
// write end only this process holds: when this process dies, however it
// dies, the kernel closes the write end, the watchdog reads end-of-file and
// kills the control plane's process groups (SIGTERM, then SIGKILL after 5 s).
type watchdog struct {
	cmd  *exec.Cmd
	pipe *os.File
	// pgids are the process groups it guards.
	pgids []int
}

// watchdogScript is the watchdog's program; "$@" are the process groups.
const watchdogScript = `cat >/dev/null
for g in "$@"; do kill -TERM -- "-$g" 2>/dev/null || kill -TERM "$g" 2>/dev/null; done
sleep 5
for g in "$@"; do kill -KILL -- "-$g" 2>/dev/null || kill -KILL "$g" 2>/dev/null; done
exit 0`

// startWatchdog guards the process groups pgids.
func startWatchdog(pgids []int) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := []string{"-c", watchdogScript, "stateguard-watchdog"}
	for _, g := range pgids {
		args = append(args, strconv.Itoa(g))
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	// Its own process group: a Ctrl-C to the terminal's group must not
	// end it before it did its work.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	r.Close()
	return &watchdog{cmd: cmd, pipe: w, pgids: pgids}, nil
}

// release ends the watchdog without it killing anything: the control plane
// was stopped, and its process ids may be reused.
func (d *watchdog) release() {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.pipe.Close()
}

// guardControlPlane starts a watchdog for the etcd and kube-apiserver that
// envtest started as children of this process since before was listed (by
// childPIDs, so that another control plane of the same process is not taken
// for this one).
func guardControlPlane(before []int) (*watchdog, error) {
	all, err := childPIDs(os.Getpid(), controlPlaneBinaries)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range all {
		if !slices.Contains(before, p) {
			pids = append(pids, p)
		}
	}
	if len(pids) != len(controlPlaneBinaries) {
		return nil, fmt.Errorf("found new control-plane processes %v, want one etcd and one kube-apiserver", pids)
	}
	return startWatchdog(pids)
}
