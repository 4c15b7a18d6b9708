package benchmemtest

import "testing"

var sink [][]byte

func TestHeapPeakSeesAnAllocation(t *testing.T) {
	stop := HeapPeak()
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	peak := stop()
	sink = nil
	if peak < 32<<20 {
		t.Errorf("peak %d bytes after holding 64 MiB", peak)
	}
}
