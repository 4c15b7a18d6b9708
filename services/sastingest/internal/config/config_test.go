package config

import (
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	env := map[string]string{"TOKENS_FILE": "/etc/tokens", "MAX_BODY_BYTES": "1000"}
	c, err := Parse([]string{"--max-uncompressed-bytes=5000"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.TokensFile != "/etc/tokens" || c.MaxBodyBytes != 1000 || c.MaxUncompressed != 5000 || c.HTTPAddr != ":8080" {
		t.Errorf("config = %+v", c)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no way to authenticate", nil, "--tokens-file"},
		{"a non-positive limit", []string{"--tokens-file=x", "--max-body-bytes=0"}, "--max-body-bytes"},
		{"a short replay memory", []string{"--tokens-file=x", "--replay-ttl=1m"}, "--replay-ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
