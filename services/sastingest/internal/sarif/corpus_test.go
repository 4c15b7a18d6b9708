package sarif_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// corpusDir is ../shared/sarif relative to the project root (the directory
// holding go.work).
func corpusDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.work above the test: the shared SARIF corpus cannot be located")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "sarif")
	if _, err := os.Stat(c); err != nil {
		t.Skipf("shared SARIF corpus absent at %s", c)
	}
	return c
}

// countResults counts results independently of the parser: the sum of
// len(runs[].results).
func countResults(t *testing.T, data []byte) int {
	t.Helper()
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var doc struct {
		Runs []struct {
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("independent count: %v", err)
	}
	n := 0
	for _, r := range doc.Runs {
		n += len(r.Results)
	}
	return n
}

func TestParseCorpus(t *testing.T) {
	dir := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.sarif"))
	more, _ := filepath.Glob(filepath.Join(dir, "valid", "*", "*.sarif"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatalf("no SARIF files under %s", dir)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := sarif.Parse(bytes.NewReader(data), nil)
			var perr *sarif.Error
			switch top := filepath.SplitList(rel)[0]; {
			case filepath.Dir(filepath.Dir(rel)) == "valid":
				if err != nil {
					t.Fatalf("valid log rejected: %v", err)
				}
				if want := countResults(t, data); sum.ResultsTotal != want {
					t.Errorf("results = %d, want %d", sum.ResultsTotal, want)
				}
			case filepath.Dir(rel) == "invalid":
				if !errors.As(err, &perr) || perr.Reason == "" {
					t.Fatalf("invalid log: err = %v, want a *sarif.Error with a reason", err)
				}
			default:
				_ = top
				if err != nil && !errors.As(err, &perr) {
					t.Fatalf("edge log: err = %v, want nil or a *sarif.Error", err)
				}
				t.Logf("edge: err=%v", err)
			}
		})
	}
}
