package apiauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stateguard/stateguard/services/snapshotter/internal/apiauth"
)

func TestRequire(t *testing.T) {
	tokens, err := apiauth.Parse([]byte("# written by make run\n\n  operator-token  \nsecond\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := tokens.Require(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"the first token", "Bearer operator-token", http.StatusTeapot},
		{"the second token", "Bearer second", http.StatusTeapot},
		{"a wrong token", "Bearer operator-tokeN", http.StatusUnauthorized},
		{"the comment line", "Bearer # written by make run", http.StatusUnauthorized},
		{"an empty token", "Bearer ", http.StatusUnauthorized},
		{"basic auth", "Basic b3BlcmF0b3ItdG9rZW4=", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/v1/restore-plan/shop/snap", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				if rec.Header().Get("WWW-Authenticate") == "" || rec.Header().Get("Content-Type") != "application/problem+json" {
					t.Errorf("headers %v", rec.Header())
				}
			}
		})
	}
}

func TestParseRefusesAFileWithoutToken(t *testing.T) {
	if _, err := apiauth.Parse([]byte("# only a comment\n\n")); err == nil {
		t.Fatal("no error for a file without a token")
	}
}
