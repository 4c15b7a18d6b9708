package manifests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

type composeFile struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Ports       []string          `json:"ports"`
	Profiles    []string          `json:"profiles"`
	ReadOnly    bool              `json:"read_only"`
	CapDrop     []string          `json:"cap_drop"`
}

var composeDefault = regexp.MustCompile(`^\$\{[A-Z_]+:-(.*)\}$`)

// TestCompose validates docker-compose.yaml without a container engine: its
// YAML, the services and their wiring, that every file it mounts or builds
// from exists, and that the NATS configuration it mounts runs JetStream with
// sync_interval: always.
func TestCompose(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	// Compose has many more keys than composeService knows: the YAML must
	// parse, and the keys read here must be right.
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	var names []string
	for n := range cf.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"certwatcher", "console", "correlator", "nats", "otel-collector", "sastingest", "snapshotter"}, names); diff != "" {
		t.Errorf("compose services (-want +got):\n%s", diff)
	}

	mounts := func(name string, s composeService) map[string]string {
		m := map[string]string{}
		for _, v := range s.Volumes {
			var src, rest string
			if strings.HasPrefix(v, "${") { // ${VAR:-default}:target
				i := strings.Index(v, "}")
				src, rest = v[:i+1], strings.TrimPrefix(v[i+1:], ":")
			} else {
				src, rest, _ = strings.Cut(v, ":")
			}
			target, _, _ := strings.Cut(rest, ":")
			if target == "" {
				t.Errorf("%s: volume %q has no target", name, v)
				continue
			}
			if d := composeDefault.FindStringSubmatch(src); d != nil {
				src = d[1]
			}
			m[target] = src
			if strings.HasPrefix(src, "./deploy/") || strings.HasPrefix(src, "./services/") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if !strings.HasPrefix(src, "./") {
				if _, ok := cf.Volumes[src]; !ok {
					t.Errorf("%s uses volume %s, which is not declared", name, src)
				}
			}
		}
		return m
	}

	for _, s := range services {
		cs, ok := cf.Services[s.name]
		if !ok {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			if cs.Build == nil || cs.Build.Context != "." || cs.Build.Dockerfile != "services/"+s.name+"/Dockerfile" {
				t.Errorf("build %+v, want context . and services/%s/Dockerfile", cs.Build, s.name)
			}
			if want := "ghcr.io/stateguard/" + s.name + ":dev"; cs.Image != want {
				t.Errorf("image %q, want %q", cs.Image, want)
			}
			port := strconv.Itoa(int(s.port))
			if got := cs.Environment["HTTP_ADDR"]; got != ":"+port {
				t.Errorf("HTTP_ADDR %q, want :%s", got, port)
			}
			if got := cs.Environment["NATS_URL"]; got != "nats://nats:4222" {
				t.Errorf("NATS_URL %q, want nats://nats:4222", got)
			}
			// Published on the same port unless moved by NAME_PORT (the
			// compose test moves them to free ports).
			if want := "${" + strings.ToUpper(s.name) + "_PORT:-" + port + "}:" + port; !slices.Contains(cs.Ports, want) {
				t.Errorf("ports %v, want %s", cs.Ports, want)
			}
			if !cs.ReadOnly || !slices.Equal(cs.CapDrop, []string{"ALL"}) {
				t.Errorf("read_only %v, cap_drop %v; want a read-only root and no capabilities", cs.ReadOnly, cs.CapDrop)
			}
			var env []string
			for k := range cs.Environment {
				env = append(env, k)
			}
			checkWiring(t, "docker-compose", s.name, env, nil)
			// Files named in the environment are mounted.
			m := mounts(s.name, cs)
			for k, v := range cs.Environment {
				if strings.HasPrefix(v, "/config/") || strings.HasPrefix(v, "/kube/") {
					if _, ok := m[v]; !ok {
						t.Errorf("%s=%s is not mounted", k, v)
					}
				}
			}
		})
	}

	t.Run("nats", func(t *testing.T) {
		n := cf.Services["nats"]
		// Built by `make images` (pkg/harness/cmd/images), no registry.
		if n.Image != "ghcr.io/stateguard/nats-server:dev" {
			t.Errorf("nats image %q, want ghcr.io/stateguard/nats-server:dev (make images)", n.Image)
		}
		if !n.ReadOnly || !slices.Equal(n.CapDrop, []string{"ALL"}) {
			t.Errorf("nats: read_only %v, cap_drop %v; want a read-only root and no capabilities", n.ReadOnly, n.CapDrop)
		}
		m := mounts("nats", n)
		conf, ok := m["/etc/nats/nats.conf"]
		if !ok || !slices.Contains(n.Command, "/etc/nats/nats.conf") {
			t.Fatalf("nats does not run with the mounted /etc/nats/nats.conf (command %v)", n.Command)
		}
		if m["/data"] != "nats-data" {
			t.Errorf("JetStream store /data on %q, want the volume nats-data", m["/data"])
		}
		text, err := os.ReadFile(filepath.Join(root, conf))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(text), "/data/jetstream", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !opts.JetStream || !opts.SyncAlways || opts.Port != 4222 {
			t.Errorf("jetstream %v, sync always %v, port %d; want JetStream with sync_interval: always on 4222", opts.JetStream, opts.SyncAlways, opts.Port)
		}
	})

	t.Run("console", func(t *testing.T) {
		if got := cf.Services["console"].Environment["CORRELATOR_URL"]; got != "http://correlator:8083" {
			t.Errorf("console CORRELATOR_URL %q, want http://correlator:8083", got)
		}
	})

	t.Run("otel-collector", func(t *testing.T) {
		o := cf.Services["otel-collector"]
		// Not built here (no engine, no registry): on request only.
		if !slices.Equal(o.Profiles, []string{"telemetry"}) {
			t.Errorf("otel-collector profiles %v, want [telemetry]", o.Profiles)
		}
		m := mounts("otel-collector", o)
		conf, ok := m["/etc/otelcol/config.yaml"]
		if !ok || !slices.Contains(o.Command, "--config=/etc/otelcol/config.yaml") {
			t.Fatalf("collector does not run with the mounted config (command %v)", o.Command)
		}
		text, err := os.ReadFile(filepath.Join(root, conf))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Receivers map[string]struct {
				Protocols map[string]struct {
					Endpoint string `json:"endpoint"`
				} `json:"protocols"`
			} `json:"receivers"`
			Exporters map[string]any `json:"exporters"`
			Service   struct {
				Pipelines map[string]struct {
					Receivers, Processors, Exporters []string
				} `json:"pipelines"`
			} `json:"service"`
		}
		if err := yaml.Unmarshal(text, &cfg); err != nil {
			t.Fatal(err)
		}
		if got := cfg.Receivers["otlp"].Protocols["http"].Endpoint; !strings.HasSuffix(got, ":4318") {
			t.Errorf("OTLP/HTTP receiver on %q, want :4318 (the services export to otel-collector:4318)", got)
		}
		traces := cfg.Service.Pipelines["traces"]
		if !slices.Contains(traces.Receivers, "otlp") || len(traces.Exporters) == 0 {
			t.Errorf("traces pipeline %+v: want otlp in and an exporter out", traces)
		}
		for _, e := range traces.Exporters {
			if _, ok := cfg.Exporters[e]; !ok {
				t.Errorf("pipeline exporter %s is not configured", e)
			}
		}
		if !slices.Contains(o.Ports, "4318:4318") {
			t.Errorf("ports %v, want 4318 published", o.Ports)
		}
	})
}
