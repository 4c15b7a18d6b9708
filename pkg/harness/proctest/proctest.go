package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/logtest"
)

// Build builds the main package in dir (a service module's root) into the
// test's temporary directory and returns the binary's path.
func Build(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "service")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", dir, err, out)
	}
	return bin
}

// Proc is a service running as a process of its own.
type Proc struct {
	cmd *exec.Cmd
	out *logtest.Buffer
}

// Start runs bin with the test's environment plus env; the process is
// killed when the test ends if it still runs.
func Start(t *testing.T, bin string, env map[string]string) *Proc {
	t.Helper()
	p := &Proc{cmd: exec.Command(bin), out: &logtest.Buffer{}}
	p.cmd.Env = os.Environ()
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL — no shutdown path runs — and waits for the process.
func (p *Proc) Kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// Logs is everything the process wrote so far.
func (p *Proc) Logs() string { return p.out.String() }
