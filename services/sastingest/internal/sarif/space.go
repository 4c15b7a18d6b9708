package sarif

import "io"

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
		w := 0
		for i := 0; i < n; i++ {
			c := p[i]
			switch {
			case s.inString:
				switch {
				case s.escape:
					s.escape = false
				case c == '\\':
					s.escape = true
				case c == '"':
					s.inString = false
				}
			case c == ' ' || c == '\n' || c == '\r' || c == '\t':
				if s.space {
					continue
				}
				s.space = true
				p[w] = c
				w++
				continue
			case c == '"':
				s.inString = true
			}
			s.space = false
			p[w] = c
			w++
		}
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
	}
}
