package sarif

import (
	"bytes"
	"io"
)

// spaceReader collapses each run of white space outside JSON strings to a
// single byte. encoding/json's Decoder keeps the white space between values
// in its buffer and scans it again on every refill, so a log padded with
// gigabytes of white space (a gzip bomb of spaces compresses 1000:1) would
// cost quadratic time and as much memory as the padding; collapsed, it
// costs neither. Values are unchanged.
type spaceReader struct {
	r        io.Reader
	inString bool
	escape   bool
	space    bool // the last byte passed on was white space outside a string
	// scanned counts the bytes the string searches looked at, for the
	// test that proves the work is linear.
	scanned int
}

func (s *spaceReader) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		w := s.collapse(p[:n])
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
	}
}

// collapse rewrites b in place and returns the length kept. Inside strings
// it jumps to the next quote or backslash with IndexByte: that is most of
// a log. Each byte of b is looked at a bounded number of times, however
// many escapes a string holds (see nextStop), so a read costs time linear
// in its length.
func (s *spaceReader) collapse(b []byte) int {
	w, i, n := 0, 0, len(b)
	quote := -1 // the index in b of the next '"' at or after i, n if none; -1 when not yet searched
	for i < n {
		c := b[i]
		switch {
		case s.escape:
			s.escape = false
		case s.inString:
			var j int
			j, quote = s.nextStop(b, i, quote)
			if j == n {
				if w != i {
					copy(b[w:], b[i:])
				}
				return w + n - i
			}
			if j > i {
				if w != i {
					copy(b[w:], b[i:j])
				}
				w += j - i
				i = j
				c = b[i]
			}
			if c == '\\' {
				s.escape = true
			} else {
				s.inString = false
			}
		case c == ' ' || c == '\n' || c == '\r' || c == '\t':
			if s.space {
				i++
				continue
			}
			s.space = true
			b[w] = c
			w++
			i++
			continue
		case c == '"':
			s.inString = true
		}
		s.space = false
		b[w] = c
		w++
		i++
	}
	return w
}

// nextStop returns the index of the next quote or backslash at or after i
// in b (len(b) if none) and the index of the next quote, which the caller
// passes back as quote while it lies ahead. The quote is searched for only
// once i has passed the last one found: a string of a million escapes
// would otherwise search the rest of the buffer for its closing quote at
// every escape, a quadratic cost (1 MiB of \u escapes took seconds).
func (s *spaceReader) nextStop(b []byte, i, quote int) (stop, nextQuote int) {
	n := len(b)
	if quote < i {
		quote = bytes.IndexByte(b[i:], '"')
		if quote < 0 {
			quote = n
			s.scanned += n - i
		} else {
			s.scanned += quote + 1
			quote += i
		}
	}
	stop = quote
	if k := bytes.IndexByte(b[i:quote], '\\'); k >= 0 {
		stop = i + k
		s.scanned += k + 1
	} else {
		s.scanned += quote - i
	}
	return stop, quote
}
