package sarif

import (
	"bytes"
	"io"
	"os"
	"testing"
)

func BenchmarkSpaceReader(b *testing.B) {
	data, err := os.ReadFile("../../testdata/gosec-sampleapp.sarif")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.Repeat(data, 40)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		_, _ = io.Copy(io.Discard, &spaceReader{r: bytes.NewReader(data)})
	}
}
