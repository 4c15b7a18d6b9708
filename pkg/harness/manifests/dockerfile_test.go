package manifests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// TestDockerfiles checks each service's Dockerfile without a container
// engine: a Go 1.26 builder stage that builds a static, trimmed binary from
// the repository root, a distroless non-root final stage, and COPY sources
// that exist.
func TestDockerfiles(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(root, "services", s.name, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			// Join continuation lines, drop comments.
			text := strings.ReplaceAll(string(data), "\\\n", " ")
			var froms, users []string
			var entrypoint, expose string
			var static, trimpath, noWork bool
			for _, line := range strings.Split(text, "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				instr, args, _ := strings.Cut(line, " ")
				switch strings.ToUpper(instr) {
				case "FROM":
					fields := strings.Fields(args)
					for _, f := range fields {
						if !strings.HasPrefix(f, "--") {
							froms = append(froms, f)
							break
						}
					}
				case "ENV":
					static = static || strings.Contains(args, "CGO_ENABLED=0")
					noWork = noWork || strings.Contains(args, "GOWORK=off")
				case "RUN":
					if strings.Contains(args, "go build") {
						trimpath = strings.Contains(args, "-trimpath")
						if !strings.Contains(args, "-o /out/"+s.name+" .") && !strings.Contains(args, "./cmd/") {
							t.Errorf("go build %q does not build the service into /out/%s", args, s.name)
						}
					}
				case "COPY":
					if strings.HasPrefix(args, "--from") {
						continue
					}
					srcs := strings.Fields(args)
					for _, src := range srcs[:len(srcs)-1] {
						if _, err := os.Stat(filepath.Join(root, src)); err != nil {
							t.Errorf("COPY %s: not in the repository (the build context is its root): %v", src, err)
						}
					}
				case "USER":
					users = append(users, args)
				case "ENTRYPOINT":
					entrypoint = args
				case "EXPOSE":
					expose = args
				}
			}
			switch {
			case len(froms) < 2 || froms[0] != "golang:1.26":
				t.Errorf("stages %v: want a golang:1.26 builder first", froms)
			case froms[len(froms)-1] != "gcr.io/distroless/static-debian12:nonroot":
				t.Errorf("final stage %s, want gcr.io/distroless/static-debian12:nonroot", froms[len(froms)-1])
			}
			if !static || !trimpath || !noWork {
				t.Errorf("CGO_ENABLED=0 %v, -trimpath %v, GOWORK=off %v: want all", static, trimpath, noWork)
			}
			if len(users) == 0 || !strings.HasPrefix(users[len(users)-1], "nonroot") {
				t.Errorf("USER %v, want nonroot last", users)
			}
			if entrypoint != `["/`+s.name+`"]` {
				t.Errorf("ENTRYPOINT %s, want [\"/%s\"]", entrypoint, s.name)
			}
			if expose != strconv.Itoa(int(s.port)) {
				t.Errorf("EXPOSE %s, want %d", expose, s.port)
			}
		})
	}
}
