package events

import (
	"context"
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
	var todo []int
	for i := range puts {
		if puts[i].Err == nil {
			if puts[i].Err = CheckSubject(kvSubject(w.bucket, puts[i].Key)); puts[i].Err == nil {
				todo = append(todo, i)
			}
		}
	}
	var (
		mu    sync.Mutex
		stats KVBatches
		wg    sync.WaitGroup
	)
	for from := 0; from < len(todo); {
		to, size := from, 0
		for to < len(todo) && to-from < MaxBatch && (to == from || size+len(puts[todo[to]].Value) <= maxBatchBytes) {
			size += len(puts[todo[to]].Value)
			to++
		}
		part := todo[from:to]
		from = to
		if len(part) < MinBatch {
			wg.Go(func() { w.putEach(ctx, puts, part) })
			continue
		}
		wg.Go(func() {
			atomic := w.putAtomic(ctx, puts, part)
			if !atomic {
				w.putEach(ctx, puts, part)
			}
			mu.Lock()
			if atomic {
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

// putAtomic stores the puts of idx as one atomic batch and sets their
// revisions; false when the server refused the batch (nothing of it is
// stored then).
func (w *KVWriter) putAtomic(ctx context.Context, puts []KVPut, idx []int) bool {
	msgs := make([]*nats.Msg, len(idx))
	for n, i := range idx {
		h := nats.Header{}
		h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(puts[i].Rev, 10))
		msgs[n] = &nats.Msg{Subject: kvSubject(w.bucket, puts[i].Key), Header: h, Data: puts[i].Value}
	}
	ctx, cancel := context.WithTimeout(ctx, kvBatchTimeout)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(ctx, w.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		return false
	}
	// A batch is stored as consecutive messages: the last one has the
	// acknowledged sequence.
	seq := ack.Sequence - uint64(len(idx))
	for _, i := range idx {
		seq++
		puts[i].Rev = seq
	}
	return true
}

// putEach stores the puts of idx one by one, pipelined.
func (w *KVWriter) putEach(ctx context.Context, puts []KVPut, idx []int) {
	acks := make([]jetstream.PubAckFuture, len(puts))
	for _, i := range idx {
		acks[i], puts[i].Err = w.js.PublishAsync(kvSubject(w.bucket, puts[i].Key), puts[i].Value,
			jetstream.WithExpectLastSequencePerSubject(puts[i].Rev))
	}
	for _, i := range idx {
		if puts[i].Err != nil {
			continue
		}
		select {
		case pa := <-acks[i].Ok():
			puts[i].Rev = pa.Sequence
		case puts[i].Err = <-acks[i].Err():
		case <-ctx.Done():
			puts[i].Err = ctx.Err()
		}
	}
}
