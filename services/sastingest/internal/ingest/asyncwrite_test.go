package ingest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
)

func TestAsyncWriterWritesEverythingInOrder(t *testing.T) {
	var out bytes.Buffer
	h := sha256.New()
	a := newAsyncWriter(&out, h)
	var want bytes.Buffer
	buf := make([]byte, 4096)
	for i := range 500 {
		for j := range buf {
			buf[j] = byte(i + j)
		}
		n := 1 + i%len(buf)
		want.Write(buf[:n])
		if _, err := a.Write(buf[:n]); err != nil { // buf is reused: the writer must copy
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatal("bytes differ from what was written")
	}
	if got, exp := h.Sum(nil), sha256.Sum256(want.Bytes()); !bytes.Equal(got, exp[:]) {
		t.Error("hash differs")
	}
}

type failing struct{ after int }

func (f *failing) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestAsyncWriterReportsTheFirstError(t *testing.T) {
	a := newAsyncWriter(&failing{after: 2}, io.Discard)
	var err error
	for range 100 {
		if _, err = a.Write([]byte("chunk")); err != nil {
			break
		}
	}
	if cerr := a.Close(); cerr == nil || cerr.Error() != "disk full" {
		t.Errorf("Close = %v, want disk full", cerr)
	}
}
