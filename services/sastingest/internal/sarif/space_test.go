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

// TestSpaceReaderWorkIsLinearInEscapes counts the bytes the string
// searches look at in one read of a string of escapes: each escape used to
// search the rest of the buffer for the closing quote, n²/12 bytes for n
// bytes of \u escapes (issue #18, finding 4).
func TestSpaceReaderWorkIsLinearInEscapes(t *testing.T) {
	for _, body := range []string{`\u0041`, `\\`, `\"`, `a\nb`} {
		in := []byte(`{"k":"` + strings.Repeat(body, (1<<20)/len(body)) + `"}`)
		s := &spaceReader{}
		if got := s.collapse(in); got != len(in) {
			t.Fatalf("%q: kept %d bytes of %d", body, got, len(in))
		}
		if s.scanned > 2*len(in) {
			t.Errorf("%q: the searches looked at %d bytes for a read of %d: not linear", body, s.scanned, len(in))
		}
	}
}

// collapseOneByOne is the plain state machine collapse must agree with.
func collapseOneByOne(in []byte) []byte {
	var out []byte
	inString, escape, space := false, false, false
	for _, c := range in {
		switch {
		case escape:
			escape = false
		case inString:
			switch c {
			case '\\':
				escape = true
			case '"':
				inString = false
			}
		case c == ' ' || c == '\n' || c == '\r' || c == '\t':
			if space {
				continue
			}
			space = true
			out = append(out, c)
			continue
		case c == '"':
			inString = true
		}
		space = false
		out = append(out, c)
	}
	return out
}

// FuzzSpaceReader checks the collapser that skips to the next quote or
// backslash against the byte-at-a-time state machine, across reads split
// anywhere.
func FuzzSpaceReader(f *testing.F) {
	f.Add([]byte(`{  "a b\"  c" :  [ 1 ,   "  \\"  ]   }`), uint8(3))
	f.Add([]byte(`{"k":"`+strings.Repeat(`\u0041`, 50)+`"   }`), uint8(7))
	f.Add([]byte(`"\\\"\"  "   "`), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		want := collapseOneByOne(in)
		r := &spaceReader{r: iotest.HalfReader(strings.NewReader(string(in)))}
		if split%2 == 0 {
			r = &spaceReader{r: iotest.OneByteReader(strings.NewReader(string(in)))}
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("collapse(%q) = %q, want %q", in, got, want)
		}
		whole := append([]byte(nil), in...)
		if n := (&spaceReader{}).collapse(whole); string(whole[:n]) != string(want) {
			t.Fatalf("one read: collapse(%q) = %q, want %q", in, whole[:n], want)
		}
	})
}
