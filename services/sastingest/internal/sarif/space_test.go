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

func TestSpaceReaderLongStringsAndEscapesAcrossReads(t *testing.T) {
	in := `{"a":"` + strings.Repeat(`x  \" \\ y`, 100) + `"   ,  "b" :  [ "  " ] }`
	want := `{"a":"` + strings.Repeat(`x  \" \\ y`, 100) + `" , "b" : [ "  " ] }`
	for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
		got, err := io.ReadAll(&spaceReader{r: r})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
