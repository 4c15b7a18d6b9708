package ingest

import (
	"container/heap"
	"encoding/binary"
	"io"
	"slices"

	"github.com/stateguard/stateguard/services/sastingest/internal/sarif"
)

// chunkLen is the number of fingerprints per chunk (512 KiB).
const chunkLen = 1 << 16

// fingerprintSet collects an upload's fingerprints in fixed-size chunks,
// 8 bytes each: growing it never copies what it holds, so a log of millions
// of results costs its fingerprints and nothing on top. Sorted, the chunks
// are merged on the fly.
type fingerprintSet struct {
	chunks [][]sarif.Fingerprint
}

func (s *fingerprintSet) add(f sarif.Fingerprint) {
	if n := len(s.chunks); n == 0 || len(s.chunks[n-1]) == chunkLen {
		s.chunks = append(s.chunks, make([]sarif.Fingerprint, 0, chunkLen))
	}
	last := &s.chunks[len(s.chunks)-1]
	*last = append(*last, f)
}

// sort sorts each chunk.
func (s *fingerprintSet) sort() {
	for _, c := range s.chunks {
		slices.Sort(c)
	}
}

// each calls fn for every distinct fingerprint in ascending order; the
// chunks must be sorted.
func (s *fingerprintSet) each(fn func(sarif.Fingerprint)) {
	m := newMerge(s.chunks)
	for {
		f, ok := m.next()
		if !ok {
			return
		}
		fn(f)
	}
}

// reader encodes the distinct fingerprints, ascending, 8 bytes each
// big-endian, as they are read.
func (s *fingerprintSet) reader() io.Reader { return &mergeReader{m: newMerge(s.chunks)} }

type mergeReader struct {
	m   *merge
	buf [8]byte
	off int
}

func (r *mergeReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.off == 0 || r.off == 8 {
			f, ok := r.m.next()
			if !ok {
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			binary.BigEndian.PutUint64(r.buf[:], uint64(f))
			r.off = 0
		}
		c := copy(p[n:], r.buf[r.off:])
		n += c
		r.off += c
	}
	return n, nil
}

// merge is a k-way merge of sorted chunks that drops duplicates.
type merge struct {
	h    cursorHeap
	last sarif.Fingerprint
	any  bool
}

type cursor struct {
	c []sarif.Fingerprint
	i int
}

type cursorHeap []cursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].c[h[i].i] < h[j].c[h[j].i] }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newMerge(chunks [][]sarif.Fingerprint) *merge {
	m := &merge{}
	for _, c := range chunks {
		if len(c) > 0 {
			m.h = append(m.h, cursor{c: c})
		}
	}
	heap.Init(&m.h)
	return m
}

func (m *merge) next() (sarif.Fingerprint, bool) {
	for m.h.Len() > 0 {
		top := &m.h[0]
		f := top.c[top.i]
		top.i++
		if top.i == len(top.c) {
			heap.Pop(&m.h)
		} else {
			heap.Fix(&m.h, 0)
		}
		if m.any && f == m.last {
			continue
		}
		m.last, m.any = f, true
		return f, true
	}
	return 0, false
}
