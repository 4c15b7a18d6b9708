package sarif

import (
	"math"
	"strconv"
	"testing"
)

// TestFingerprintDecimal checks the allocation-free decimal hashing of a
// line equals hashing its strconv form (the fingerprints of every stored
// finding depend on it).
func TestFingerprintDecimal(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 42, -1, -10, 1<<31 - 1, math.MaxInt64, math.MinInt64} {
		var got, want fnv64a = fnvOffset64, fnvOffset64
		got.decimal(n)
		want.field([]byte(strconv.Itoa(n)))
		if got != want {
			t.Errorf("decimal(%d) = %x, want %x", n, got, want)
		}
	}
}
