package natsflag_test

import (
	"flag"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/natsflag"
)

func TestRegister(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
		want events.ConnConfig
	}{
		"nothing given: the defaults": {
			want: events.ConnConfig{URL: events.DefaultURL, MaxReconnects: -1, ReconnectWait: 2 * time.Second,
				ReconnectBufSize: 8 << 20, PingInterval: events.DefaultPingInterval},
		},
		"the environment over the defaults, a flag over the environment": {
			args: []string{"--nats-url", "nats://flag:4222", "--nats-tls-cert", "c.pem"},
			env:  map[string]string{"NATS_URL": "nats://env:4222", "NATS_TLS_KEY": "k.pem", "NATS_PING_INTERVAL": "3s"},
			want: events.ConnConfig{URL: "nats://flag:4222", TLSCert: "c.pem", TLSKey: "k.pem", MaxReconnects: -1,
				ReconnectWait: 2 * time.Second, ReconnectBufSize: 8 << 20, PingInterval: 3 * time.Second},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got events.ConnConfig
			s := envflag.New(flag.NewFlagSet("test", flag.ContinueOnError), func(k string) string { return tt.env[k] })
			natsflag.Register(s, &got)
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
