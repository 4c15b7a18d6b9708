package sarif

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSpaceReaderCollapsesOnlyOutsideStrings(t *testing.T) {
	in := "{  \"a b\\\"  c\" :\n\n\t [ 1 ,   \"  \\\\\"  ]   }   "
	want := "{ \"a b\\\"  c\" :\n[ 1 , \"  \\\\\" ] } "
	// One byte at a time, so state crosses reads.
	got, err := io.ReadAll(&spaceReader{r: iotest.OneByteReader(strings.NewReader(in))})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
