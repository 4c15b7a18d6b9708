package demo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Scan runs gosec over one of the demo app's versions (testdata/app-v1 or
// app-v2 next to this file) and returns the SARIF log it writes.
func Scan(ctx context.Context, gosec, appDir string) ([]byte, error) {
	out := filepath.Join(os.TempDir(), fmt.Sprintf("stateguard-demo-%d.sarif", os.Getpid()))
	defer os.Remove(out)
	cmd := exec.CommandContext(ctx, gosec, "-no-fail", "-fmt", "sarif", "-out", out, "./...")
	cmd.Dir = appDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gosec %s: %w: %s", appDir, err, lastLines(string(b), 5))
	}
	return os.ReadFile(out)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Upload is what a CI job sends with a SARIF log.
type Upload struct {
	Repository string // owner/repo
	CommitSHA  string
	Ref        string
	// stateguard's join keys, sent as query parameters: the workload the
	// scan is about and the image digest it built.
	App       string
	Namespace string
	Version   string
	Images    []string
	Category  string
}

// PostGitHub uploads sarif the way GitHub's code-scanning API takes it
// (gzip, then base64, in a JSON body) and returns the status URL.
func PostGitHub(ctx context.Context, hc *http.Client, base, token string, u Upload, sarif []byte) (string, error) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(sarif); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	body, err := json.Marshal(map[string]any{
		"commit_sha": u.CommitSHA,
		"ref":        u.Ref,
		"sarif":      base64.StdEncoding.EncodeToString(gz.Bytes()),
		"tool_name":  "gosec",
	})
	if err != nil {
		return "", err
	}
	q := url.Values{}
	for k, v := range map[string]string{"app": u.App, "namespace": u.Namespace, "version": u.Version, "category": u.Category} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for _, im := range u.Images {
		q.Add("image", im)
	}
	target := strings.TrimRight(base, "/") + "/repos/" + u.Repository + "/code-scanning/sarifs"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("upload: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("upload answer: %w", err)
	}
	return out.URL, nil
}
