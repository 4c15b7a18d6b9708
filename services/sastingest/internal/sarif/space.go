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
// a log.
func (s *spaceReader) collapse(b []byte) int {
	w, i, n := 0, 0, len(b)
	for i < n {
		c := b[i]
		switch {
		case s.escape:
			s.escape = false
		case s.inString:
			// The next quote, unless a backslash comes first; strings
			// rarely hold one, and IndexByte is vectorised.
			j := bytes.IndexByte(b[i:], '"')
			seg := b[i:]
			if j >= 0 {
				seg = b[i : i+j]
			}
			if k := bytes.IndexByte(seg, '\\'); k >= 0 {
				j = k
			}
			if j < 0 {
				if w != i {
					copy(b[w:], b[i:])
				}
				return w + n - i
			}
			if j > 0 {
				if w != i {
					copy(b[w:], b[i:i+j])
				}
				w += j
				i += j
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
