package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

// corpusDir is ../shared/sarif relative to the project root (where go.work
// is); the test is skipped only when it is absent.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(testdataDir())
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.work above the module: the shared SARIF corpus cannot be located")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "sarif")
	if _, err := os.Stat(c); err != nil {
		t.Skipf("shared SARIF corpus absent at %s", c)
	}
	return c
}

// independentCount is the number of results in a log, counted without the
// service's parser: the sum of len(runs[].results).
func independentCount(t *testing.T, data []byte) int {
	t.Helper()
	var doc struct {
		Runs []struct {
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), &doc); err != nil {
		t.Fatalf("independent count: %v", err)
	}
	n := 0
	for _, r := range doc.Runs {
		n += len(r.Results)
	}
	return n
}

// TestCorpus posts every log of the shared corpus: each valid/ log is
// accepted with exactly its number of results, each invalid/ log is a 4xx
// with a reason, each edge/ log is answered without a 5xx (the choice per
// file is in the README).
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	f := newFixture(t, fixtureOpts{})
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sarif") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 100 {
		t.Fatalf("found %d SARIF files under %s, want the whole corpus", len(files), dir)
	}
	for _, path := range files {
		rel, _ := filepath.Rel(dir, path)
		kind := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
		t.Run(rel, func(t *testing.T) {
			t.Parallel() // distinct (repository, category, ref) per file: no shared baseline
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			q := "?repository=acme/corpus&category=" + url.QueryEscape(filepath.ToSlash(rel))
			code, a, p := f.upload(t, q, data, true)
			switch kind {
			case "valid":
				if code != http.StatusAccepted {
					t.Fatalf("valid log: status %d (%s at %s), want 202", code, p.Detail, p.JSONPath)
				}
				st, err := f.pipeline.Get(t.Context(), a.ID)
				if err != nil {
					t.Fatal(err)
				}
				if want := independentCount(t, data); st.Summary.ResultsTotal != want {
					t.Errorf("results_total = %d, want %d", st.Summary.ResultsTotal, want)
				}
			case "invalid":
				if code != http.StatusBadRequest || p.Type != ProblemBase+"not-sarif" || p.Detail == "" {
					t.Fatalf("invalid log: status %d, detail %q: want a 4xx with a reason", code, p.Detail)
				}
				t.Logf("rejected: %d %s at %s", code, p.Detail, p.JSONPath)
			default:
				switch {
				case code == http.StatusAccepted:
					st, err := f.pipeline.Get(t.Context(), a.ID)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("edge accepted: %d results, %d anomalies", st.Summary.ResultsTotal, st.Summary.Anomalies)
				case code == http.StatusBadRequest && p.Detail != "":
					t.Logf("edge rejected: %d %s at %s", code, p.Detail, p.JSONPath)
				default:
					t.Fatalf("edge log: status %d, detail %q: want 202, or a 4xx with a reason", code, p.Detail)
				}
			}
		})
	}
	_ = ingest.StateComplete
}
