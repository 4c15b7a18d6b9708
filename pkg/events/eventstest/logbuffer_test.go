package eventstest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Concurrent writers lose nothing and the reader sees whole writes (run
// with -race).
func TestBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b LogBuffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", w, i)
			}
		})
	}
	_ = b.String()
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for w := range 4 {
		if !strings.Contains(b.String(), fmt.Sprintf("w%d-99\n", w)) {
			t.Errorf("writer %d's last line is missing", w)
		}
	}
}
