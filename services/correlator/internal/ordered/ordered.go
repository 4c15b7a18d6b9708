// Package ordered lists the keys of a map in order: the order in which the
// correlator's model walks its facts and its state codec writes them, as
// encoding/json does.
package ordered

import "slices"

// Keys returns the keys of m, sorted. The slice is sized at once:
// slices.Sorted(maps.Keys(m)) grows it step by step, measurably slower for
// a namespace's snapshots and uploads.
func Keys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
