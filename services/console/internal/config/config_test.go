package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	if c.HTTPAddr != ":8084" || c.PageSize != 50 || c.SessionTTL != 8*time.Hour || c.HTTPS() || len(c.Consumers) != len(DefaultConsumers) {
		t.Errorf("defaults: %+v", c)
	}
	c, err = Load([]string{"--page-size", "20"}, env(map[string]string{"CORRELATOR_URL": "https://correlator:8083", "PAGE_SIZE": "30"}), io.Discard)
	if err != nil || c.CorrelatorURL != "https://correlator:8083" || c.PageSize != 20 {
		t.Errorf("flags over environment: %+v, %v", c, err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"a correlator URL without a scheme", []string{"--correlator-url", "correlator:8083"}, "--correlator-url"},
		{"a certificate without its key", []string{"--tls-cert-file", "c.pem"}, "--tls-cert-file and --tls-key-file"},
		{"a session shorter than a minute", []string{"--session-ttl", "5s"}, "--session-ttl"},
		{"a page of 0", []string{"--page-size", "0"}, "--page-size"},
		{"a consumer without its stream", []string{"--consumers", "correlator-sarif"}, "--consumers"},
		{"a word that is not a flag", []string{"--page-size", "20", "serve"}, "unexpected arguments: [serve]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, env(nil), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
