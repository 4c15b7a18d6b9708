package events_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// kvBucket creates a KV bucket whose stream allows atomic batches.
func kvBucket(t *testing.T, c *events.Client, name string) jetstream.KeyValue {
	t.Helper()
	kv, err := c.JetStream().CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: name, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.JetStream().Stream(t.Context(), "KV_"+name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowAtomicPublish = true
	if _, err := c.JetStream().UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return kv
}

// checkStored fails unless every put without an error holds, in the
// bucket, its value at the revision PutAll reported.
func checkStored(t *testing.T, kv jetstream.KeyValue, puts []events.KVPut) {
	t.Helper()
	for _, p := range puts {
		if p.Err != nil {
			continue
		}
		e, err := kv.Get(t.Context(), p.Key)
		if err != nil {
			t.Fatalf("%s: %v", p.Key, err)
		}
		if e.Revision() != p.Rev || string(e.Value()) != string(p.Value) {
			t.Errorf("%s: KV has %q at revision %d, PutAll reported revision %d for %q", p.Key, e.Value(), e.Revision(), p.Rev, p.Value)
		}
	}
}

// PutAll stores many keys as one atomic batch, each at the revision it
// reports; when another writer changed one key, the batch is refused whole
// and written again key by key, so only that key fails; a few keys go one
// by one.
func TestKVWriterPutAllIsolatesAConflict(t *testing.T) {
	c := eventstest.Client(t, eventstest.Run(t))
	kv := kvBucket(t, c, "kvbatch")
	w := c.KVWriter("kvbatch")
	puts := make([]events.KVPut, 30)
	for i := range puts {
		puts[i] = events.KVPut{Key: fmt.Sprintf("k.%02d", i), Value: []byte("v1")}
	}
	if got := w.PutAll(t.Context(), puts); got != (events.KVBatches{Atomic: 1}) {
		t.Errorf("first round: %+v, want one atomic batch", got)
	}
	for _, p := range puts {
		if p.Err != nil {
			t.Errorf("%s: %v", p.Key, p.Err)
		}
	}
	checkStored(t, kv, puts)

	// Another writer stores k.07 behind the writer's back.
	if _, err := kv.Put(t.Context(), "k.07", []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	for i := range puts {
		puts[i].Value = []byte("v2")
	}
	if got := w.PutAll(t.Context(), puts); got != (events.KVBatches{Fallback: 1}) {
		t.Errorf("second round: %+v, want one refused batch", got)
	}
	for _, p := range puts {
		var apiErr *jetstream.APIError
		conflict := errors.As(p.Err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
		if (p.Key == "k.07") != conflict {
			t.Errorf("%s: error %v", p.Key, p.Err)
		}
	}
	checkStored(t, kv, puts)

	// A few keys go one by one (no batch), with the same compare-and-set.
	few := []events.KVPut{{Key: "k.01", Value: []byte("v3"), Rev: puts[1].Rev}, {Key: "k.02", Value: []byte("v3"), Rev: 1}}
	if got := w.PutAll(t.Context(), few); got != (events.KVBatches{}) {
		t.Errorf("two keys: %+v, want no batch", got)
	}
	if few[0].Err != nil || few[1].Err == nil {
		t.Errorf("k.01 (right revision): %v; k.02 (stale revision): %v, want only k.02 to fail", few[0].Err, few[1].Err)
	}
	checkStored(t, kv, few)
}

// PutGroups stores each group all or nothing: when another writer changed
// the guarding key of one group, that group's keys (also those written
// whatever their revision) are all refused, the other groups stored; a
// group of two keys goes as an atomic batch although it is small.
func TestKVWriterPutGroupsIsAllOrNothing(t *testing.T) {
	c := eventstest.Client(t, eventstest.Run(t))
	kv := kvBucket(t, c, "kvgroups")
	w := c.KVWriter("kvgroups")
	group := func(ns, v string, rev uint64) []events.KVPut {
		return []events.KVPut{{Key: "ns." + ns, Value: []byte(v), Rev: rev},
			{Key: "ns." + ns + ".pvc.a", Value: []byte(v), Any: true}, {Key: "ns." + ns + ".pvc.b", Value: []byte(v), Any: true}}
	}
	one := [][]events.KVPut{group("x", "v1", 0)}
	if got := w.PutGroups(t.Context(), one); got != (events.KVBatches{Atomic: 1}) {
		t.Errorf("one small group: %+v, want one atomic batch", got)
	}
	checkStored(t, kv, one[0])
	for _, p := range one[0] {
		if p.Err != nil {
			t.Fatalf("%s: %v", p.Key, p.Err)
		}
	}

	var groups [][]events.KVPut
	for i := range 10 {
		groups = append(groups, group(fmt.Sprintf("n%d", i), "v1", 0))
	}
	w.PutGroups(t.Context(), groups)
	if _, err := kv.Put(t.Context(), "ns.n3", []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	for i := range groups {
		groups[i] = group(fmt.Sprintf("n%d", i), "v2", groups[i][0].Rev)
	}
	if got := w.PutGroups(t.Context(), groups); got != (events.KVBatches{Fallback: 1}) {
		t.Errorf("second round: %+v, want one refused batch", got)
	}
	for i, g := range groups {
		for _, p := range g {
			var apiErr *jetstream.APIError
			conflict := errors.As(p.Err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
			if (i == 3) != conflict {
				t.Errorf("%s: error %v", p.Key, p.Err)
			}
		}
		checkStored(t, kv, g)
	}
	for _, k := range []string{"ns.n3.pvc.a", "ns.n3.pvc.b"} {
		e, err := kv.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Value()) != "v1" {
			t.Errorf("%s holds %q: a key of the refused group was stored", k, e.Value())
		}
	}

	big := make([]events.KVPut, events.MaxBatch+1)
	for i := range big {
		big[i] = events.KVPut{Key: fmt.Sprintf("big.%d", i), Value: []byte("v"), Any: true}
	}
	w.PutGroups(t.Context(), [][]events.KVPut{big})
	if big[0].Err == nil || big[len(big)-1].Err == nil {
		t.Error("a group larger than an atomic batch was not refused whole")
	}
}
