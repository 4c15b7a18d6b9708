package config

import (
	"io"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr bool
		check   func(t *testing.T, c Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c Config) {
				if c.HTTPAddr != ":8082" || !c.LeaderElect || c.LeaseName != "stateguard-snapshotter" || c.Resync != 30*time.Second || c.Identity == "" {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "environment sets values and flags win",
			args: []string{"--namespace", "prod"},
			env:  map[string]string{"WATCH_NAMESPACE": "dev", "POD_NAME": "snapshotter-0", "KUBECONFIG": "/k", "LEADER_ELECT": "false"},
			check: func(t *testing.T, c Config) {
				if c.Namespace != "prod" || c.Identity != "snapshotter-0" || c.Kubeconfig != "/k" || c.LeaderElect {
					t.Errorf("got %+v", c)
				}
			},
		},
		{name: "bad lease timing", args: []string{"--leader-elect-renew-deadline", "20s"}, wantErr: true},
		{name: "bad resync", args: []string{"--resync", "0s"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env), io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
