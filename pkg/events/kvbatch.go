package events

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// KVPut is one key of a KV bucket to write with a compare-and-set: it is
// stored only while the key's last revision is Rev (0: the key has none).
// PutAll sets Rev to the revision it was stored as, or Err to why it was
// not (a *jetstream.APIError with JSErrCodeStreamWrongLastSequence when
// another writer stored the key since).
type KVPut struct {
	Key   string
	Value []byte
	Rev   uint64
	Err   error
	// Any writes the key whatever its revision: for the keys of a group
	// (PutGroups) that another key's compare-and-set guards.
	Any bool
}

// KVBatches counts how PutAll stored its keys: atomic batches taken whole,
// and batches the server refused, whose keys went again one by one.
type KVBatches struct {
	Atomic, Fallback int
}

// KVWriter writes the keys of one KV bucket in JetStream atomic batches,
// so that with sync_interval: always one disk sync stores many keys. The
// bucket's stream must allow atomic publishing (AllowAtomicPublish; without
// it every batch is refused and its keys go one by one). It hides the
// bucket's subjects ($KV.<bucket>.<key>) from its callers.
type KVWriter struct {
	js     jetstream.JetStream
	bucket string
}

// KVWriter returns the writer of bucket's keys.
func (c *Client) KVWriter(bucket string) *KVWriter {
	return &KVWriter{js: c.js, bucket: bucket}
}

// kvBatchTimeout bounds the wait for an atomic batch's commit.
const kvBatchTimeout = 10 * time.Second

// PutAll stores puts, each with its compare-and-set, and sets each one's
// Rev or Err. From MinBatch keys on they go as atomic batches of up to
// MaxBatch keys (and maxBatchBytes) stored side by side (a last part of
// fewer than MinBatch goes one by one); a batch is taken
// whole or refused whole — one key another writer stored refuses it — and
// a refused batch goes again one key at a time, so only the conflicting
// keys fail. Fewer keys go one by one, pipelined: an atomic batch costs the
// server about as much as a dozen single writes.
func (w *KVWriter) PutAll(ctx context.Context, puts []KVPut) KVBatches {
	groups := make([][]KVPut, len(puts))
	for i := range puts {
		groups[i] = puts[i : i+1 : i+1]
	}
	return w.PutGroups(ctx, groups)
}

// PutGroups stores groups like PutAll stores keys, each group all or
// nothing: a group of several keys is never split between batches, goes
// as an atomic batch even when it is small, and after a refused batch goes
// again as an atomic batch of its own, so its keys are stored together or
// none is (a crash in between leaves the server an uncommitted batch,
// which it drops). A group of more than MaxBatch keys fails whole.
func (w *KVWriter) PutGroups(ctx context.Context, groups [][]KVPut) KVBatches {
	var todo [][]KVPut
	for _, g := range groups {
		if err := checkGroup(w.bucket, g); err != nil {
			for i := range g {
				if g[i].Err == nil {
					g[i].Err = err
				}
			}
			continue
		}
		todo = append(todo, g)
	}
	var (
		mu    sync.Mutex
		stats KVBatches
		wg    sync.WaitGroup
	)
	for from := 0; from < len(todo); {
		to, keys, size := from, 0, 0
		for to < len(todo) && (to == from || keys+len(todo[to]) <= MaxBatch && size+groupBytes(todo[to]) <= maxBatchBytes) {
			keys += len(todo[to])
			size += groupBytes(todo[to])
			to++
		}
		part := todo[from:to]
		from = to
		if keys < MinBatch && len(part) == keys {
			wg.Go(func() { w.putEach(ctx, part) })
			continue
		}
		wg.Go(func() {
			err := w.putAtomic(ctx, part)
			if err != nil {
				w.putGroupsAlone(ctx, part)
			}
			mu.Lock()
			if err == nil {
				stats.Atomic++
			} else {
				stats.Fallback++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return stats
}

// checkGroup checks a group's subjects and size; an error fails it whole.
func checkGroup(bucket string, g []KVPut) error {
	if len(g) > MaxBatch {
		return fmt.Errorf("a group of %d keys is more than an atomic batch holds (%d)", len(g), MaxBatch)
	}
	var err error
	for i := range g {
		if g[i].Err != nil {
			err = g[i].Err
		} else if e := CheckSubject(kvSubject(bucket, g[i].Key)); e != nil {
			err = e
		}
	}
	return err
}

func groupBytes(g []KVPut) int {
	n := 0
	for i := range g {
		n += len(g[i].Value)
	}
	return n
}

// putGroupsAlone stores the groups of a refused batch again, each on its
// own: a single key with its compare-and-set, several as an atomic batch.
func (w *KVWriter) putGroupsAlone(ctx context.Context, groups [][]KVPut) {
	var singles [][]KVPut
	var wg sync.WaitGroup
	for _, g := range groups {
		if len(g) == 1 {
			singles = append(singles, g)
			continue
		}
		wg.Go(func() {
			if err := w.putAtomic(ctx, [][]KVPut{g}); err != nil {
				for i := range g {
					g[i].Err = err
				}
			}
		})
	}
	w.putEach(ctx, singles)
	wg.Wait()
}

// putAtomic stores the groups as one atomic batch and sets their
// revisions; on an error (the server refused the batch, or it timed out)
// nothing of it is stored.
func (w *KVWriter) putAtomic(ctx context.Context, groups [][]KVPut) error {
	var msgs []*nats.Msg
	for _, g := range groups {
		for i := range g {
			h := nats.Header{}
			if !g[i].Any {
				h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(g[i].Rev, 10))
			}
			msgs = append(msgs, &nats.Msg{Subject: kvSubject(w.bucket, g[i].Key), Header: h, Data: g[i].Value})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, kvBatchTimeout)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(ctx, w.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		return err
	}
	// A batch is stored as consecutive messages: the last one has the
	// acknowledged sequence.
	seq := ack.Sequence - uint64(len(msgs))
	for _, g := range groups {
		for i := range g {
			seq++
			g[i].Rev = seq
		}
	}
	return nil
}

// putEach stores the keys of groups of one key one by one, pipelined.
func (w *KVWriter) putEach(ctx context.Context, groups [][]KVPut) {
	acks := make([]jetstream.PubAckFuture, len(groups))
	for n, g := range groups {
		p := &g[0]
		var opts []jetstream.PublishOpt
		if !p.Any {
			opts = append(opts, jetstream.WithExpectLastSequencePerSubject(p.Rev))
		}
		acks[n], p.Err = w.js.PublishAsync(kvSubject(w.bucket, p.Key), p.Value, opts...)
	}
	for n, g := range groups {
		p := &g[0]
		if p.Err != nil {
			continue
		}
		select {
		case pa := <-acks[n].Ok():
			p.Rev = pa.Sequence
		case p.Err = <-acks[n].Err():
		case <-ctx.Done():
			p.Err = ctx.Err()
		}
	}
}
