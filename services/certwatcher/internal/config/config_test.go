package config

import (
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr bool
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c Config) {
				if c.HTTPAddr != ":8081" || c.Cluster != ClusterAuto || c.DryRun || c.RotationRate != (Rate{6, time.Minute}) {
					t.Errorf("defaults: %+v", c)
				}
				var names []string
				for _, th := range c.Thresholds {
					names = append(names, th.Name)
				}
				if diff := cmp.Diff([]string{"30d", "14d", "7d", "1d", "expired"}, names); diff != "" {
					t.Errorf("thresholds (-want +got)\n%s", diff)
				}
				if !c.UseCluster() {
					t.Error("no --watch-dir: the cluster is used")
				}
				if c.MarkTTL != 60*24*time.Hour {
					t.Errorf("mark TTL = %s, want twice the 30d threshold", c.MarkTTL)
				}
			},
		},
		{
			name: "only --watch-dir and no cluster configured runs without Kubernetes",
			args: []string{"--watch-dir", "/etc/ssl/a", "--watch-dir", "/etc/ssl/b"},
			check: func(t *testing.T, c Config) {
				if c.UseCluster() {
					t.Error("UseCluster = true")
				}
				if diff := cmp.Diff([]string{"/etc/ssl/a", "/etc/ssl/b"}, c.WatchDirs); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			},
		},
		{
			name: "a kubeconfig with --watch-dir uses both",
			args: []string{"--watch-dir", "/x"},
			env:  map[string]string{"KUBECONFIG": "/k", "CERTWATCHER_NAMESPACES": "a,b", "CERTWATCHER_THRESHOLDS": "10d,expired"},
			check: func(t *testing.T, c Config) {
				if !c.UseCluster() || c.Kubeconfig != "/k" {
					t.Errorf("config: %+v", c)
				}
				if diff := cmp.Diff([]string{"a", "b"}, c.Namespaces); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
				if len(c.Thresholds) != 2 {
					t.Errorf("thresholds = %v", c.Thresholds)
				}
			},
		},
		{
			name: "in-cluster is detected from the environment",
			args: []string{"--watch-dir", "/x", "--dry-run", "--rotation-rate", "20/h"},
			env:  map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
			check: func(t *testing.T, c Config) {
				if !c.UseCluster() || !c.DryRun || c.RotationRate != (Rate{20, time.Hour}) {
					t.Errorf("config: %+v", c)
				}
			},
		},
		{
			name: "a mark TTL can be set",
			args: []string{"--mark-ttl", "2160h"},
			check: func(t *testing.T, c Config) {
				if c.MarkTTL != 90*24*time.Hour {
					t.Errorf("mark TTL = %s", c.MarkTTL)
				}
			},
		},
		{
			name: "short thresholds get a week",
			args: []string{"--thresholds", "36h,expired"},
			check: func(t *testing.T, c Config) {
				if c.MarkTTL != 7*24*time.Hour {
					t.Errorf("mark TTL = %s", c.MarkTTL)
				}
			},
		},
		{name: "a mark TTL not beyond the longest threshold", args: []string{"--mark-ttl", "720h"}, wantErr: true},
		{name: "bad threshold", args: []string{"--thresholds", "soon"}, wantErr: true},
		{name: "bad cluster mode", args: []string{"--cluster", "maybe"}, wantErr: true},
		{name: "cluster off without watch dirs", args: []string{"--cluster", "off"}, wantErr: true},
		{name: "bad rate", args: []string{"--rotation-rate", "fast"}, wantErr: true},
		{name: "bad pattern", args: []string{"--pem-key-patterns", "[x"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
