package ordered

import (
	"slices"
	"testing"
)

func TestKeysAreSorted(t *testing.T) {
	got := Keys(map[string]int{"b": 1, "a": 2, "c": 3})
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Keys = %v, want [a b c]", got)
	}
	if got := Keys(map[string]int(nil)); len(got) != 0 {
		t.Errorf("Keys(nil) = %v, want none", got)
	}
}
