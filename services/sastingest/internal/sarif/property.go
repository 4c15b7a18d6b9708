package sarif

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// LogProperty returns the JSON text of the member name of a log's own
// property bag (the top-level "properties" of SARIF §3.8), or nil when the
// log has none. The rest of the log is skipped undecoded, with the
// memory of the largest element. A value over limit bytes, or a document
// that is not a JSON object, is an *Error.
func LogProperty(r io.Reader, name string, limit int) ([]byte, error) {
	er := &errReader{r: r}
	br := bufio.NewReaderSize(er, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	p := &parser{src: er, dec: jsontext.NewDecoder(&spaceReader{r: br}, decoderOptions...), sum: &Summary{}}
	out, err := p.logProperty(name, limit)
	if err != nil {
		return nil, p.fail(err)
	}
	return out, nil
}

func (p *parser) logProperty(want string, limit int) ([]byte, error) {
	p.at("$")
	if k := p.dec.PeekKind(); k != '{' {
		if k == jsontext.KindInvalid {
			_, err := p.dec.ReadToken()
			return nil, err
		}
		return nil, &Error{Path: "$", Reason: "not a SARIF log: the document is not a JSON object"}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return nil, err
	}
	var out []byte
	for p.more() {
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		if string(name) != "properties" {
			p.at("$." + string(name))
			if err := p.skipLarge(); err != nil {
				return nil, err
			}
			continue
		}
		p.at("$.properties")
		err = p.members(func(name []byte) error {
			if string(name) != want {
				return p.skip()
			}
			v, err := p.dec.ReadValue()
			if err != nil {
				return err
			}
			if len(v) > limit {
				return &Error{Path: "$.properties." + strconv.Quote(want), Reason: fmt.Sprintf("%d bytes, over the limit of %d", len(v), limit)}
			}
			out = bytes.Clone(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	p.at("$")
	return out, p.end()
}
