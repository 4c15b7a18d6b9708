package sarif

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The walk reads the document with a jsontext.Decoder, which scans each
// byte once: values the normaliser reads are taken from the raw JSON text
// (strings unquoted into reused buffers, numbers parsed in place), and
// everything else is skipped without being decoded. A field of the wrong
// JSON type is skipped and recorded as an anomaly, so one malformed field
// never rejects the log.

// decoderOptions keep encoding/json's leniency that real logs rely on:
// invalid UTF-8 is replaced (not rejected) and a duplicate name is taken
// (the last one wins).
var decoderOptions = []jsontext.Options{jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)}

// errReader remembers the first error of the underlying reader, so that an
// error from r (a size limit, a broken gzip stream) is returned as is and
// not as a JSON error.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

// kindName describes a JSON kind for anomaly reasons.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n':
		return "null"
	}
	return "value"
}

// here returns the JSON path ($.runs[0].results[3].level) of the value
// read last.
func (p *parser) here() string {
	var b strings.Builder
	b.WriteByte('$')
	i := 1
	for tok := range p.dec.StackPointer().Tokens() {
		if k, _ := p.dec.StackIndex(i); k == '[' {
			b.WriteByte('[')
			b.WriteString(tok)
			b.WriteByte(']')
		} else {
			b.WriteByte('.')
			b.WriteString(tok)
		}
		i++
	}
	return b.String()
}

// wrongType skips the next value, of kind k, and records that want was
// expected there.
func (p *parser) wrongType(k jsontext.Kind, want string) error {
	raw, err := p.dec.ReadValue()
	if err != nil {
		return err
	}
	what := kindName(k)
	if k == '0' {
		what += " " + string(raw)
	}
	p.anomaly(p.here(), "a JSON "+what+" where "+want+" was expected")
	return nil
}

// beginObject reads the '{' of an object. ok is false (and the value
// skipped, as an anomaly unless null) when the next value is not an
// object.
func (p *parser) beginObject() (ok bool, err error) { return p.begin('{', "an object") }

// beginArray reads the '[' of an array, as beginObject does for objects.
func (p *parser) beginArray() (ok bool, err error) { return p.begin('[', "an array") }

func (p *parser) begin(kind jsontext.Kind, want string) (ok bool, err error) {
	switch k := p.dec.PeekKind(); k {
	case kind:
		_, err := p.dec.ReadToken()
		return err == nil, err
	case 'n':
		_, err := p.dec.ReadValue()
		return false, err
	case jsontext.KindInvalid:
		_, err := p.dec.ReadToken()
		return false, err
	default:
		return false, p.wrongType(k, want)
	}
}

// more reports whether the object or array being read has another member;
// at its end it reads the closing delimiter. A decoder error ends the loop
// and is left for end to return.
func (p *parser) more() bool {
	switch p.dec.PeekKind() {
	case '}', ']':
		return false
	case jsontext.KindInvalid:
		p.peekFailed = true
		return false
	}
	return true
}

// end reads the closing delimiter of the object or array being read (or
// returns the error that stopped more).
func (p *parser) end() error {
	_, err := p.dec.ReadToken()
	return err
}

// name reads an object member's name. The bytes are valid until the next
// read.
func (p *parser) name() ([]byte, error) {
	v, err := p.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	if len(v) < 2 || v[0] != '"' {
		return nil, errors.New("jsontext: object name is not a string")
	}
	inner := v[1 : len(v)-1]
	if simple(inner) {
		return inner, nil
	}
	p.nameBuf, _ = jsontext.AppendUnquote(p.nameBuf[:0], v)
	return p.nameBuf, nil
}

// simple reports whether a string's raw bytes are its value: printable
// ASCII without escapes.
func simple(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// match reports whether a member name is want, exactly or, as
// encoding/json matches struct fields, without regard to case.
func match(name []byte, want string) bool {
	return string(name) == want || (len(name) == len(want) && bytes.EqualFold(name, []byte(want)))
}

// appendString appends the next value, a string, unquoted to dst. ok is
// false, and dst unchanged, when the value is null or not a string (an
// anomaly).
func (p *parser) appendString(dst []byte) (out []byte, ok bool, err error) {
	switch k := p.dec.PeekKind(); k {
	case '"':
		v, err := p.dec.ReadValue()
		if err != nil {
			return dst, false, err
		}
		if inner := v[1 : len(v)-1]; simple(inner) {
			return append(dst, inner...), true, nil
		}
		// Invalid UTF-8 is replaced with U+FFFD, as encoding/json does.
		out, _ := jsontext.AppendUnquote(dst, v)
		return out, true, nil
	case 'n':
		_, err := p.dec.ReadValue()
		return dst, false, err
	case jsontext.KindInvalid:
		_, err := p.dec.ReadValue()
		return dst, false, err
	default:
		return dst, false, p.wrongType(k, "a string")
	}
}

// str reads the next value, a string, into *dst (null leaves it as is).
func (p *parser) str(dst *string) error {
	b, ok, err := p.appendString(p.strBuf[:0])
	p.strBuf = b[:0]
	if ok {
		*dst = string(b)
	}
	return err
}

// strPtr reads a string that may be absent or null into *dst.
func (p *parser) strPtr(dst **string) error {
	if p.dec.PeekKind() == 'n' {
		_, err := p.dec.ReadValue()
		*dst = nil
		return err
	}
	b, ok, err := p.appendString(p.strBuf[:0])
	p.strBuf = b[:0]
	if ok {
		s := string(b)
		*dst = &s
	}
	return err
}

// interned reads a string through the parser's table of rule ids and tool
// names, which repeat from result to result.
func (p *parser) interned(dst *string) error {
	b, ok, err := p.appendString(p.strBuf[:0])
	p.strBuf = b[:0]
	if ok {
		*dst = p.intern(b)
	}
	return err
}

// maxInterned bounds the intern table.
const maxInterned = 1 << 14

func (p *parser) intern(b []byte) string {
	if s, ok := p.strings[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.strings) < maxInterned {
		if p.strings == nil {
			p.strings = make(map[string]string)
		}
		p.strings[s] = s
	}
	return s
}

// integer reads the next value, an integer, into *dst (null leaves it as
// is). A number that is not an int (18446744073709551615, 1.5) is an
// anomaly, as encoding/json would report it.
func (p *parser) integer(dst *int) error {
	switch k := p.dec.PeekKind(); k {
	case '0':
		v, err := p.dec.ReadValue()
		if err != nil {
			return err
		}
		if n, ok := parseInt(v); ok {
			*dst = n
			return nil
		}
		p.anomaly(p.here(), "a JSON number "+string(v)+" where int was expected")
		return nil
	case 'n':
		_, err := p.dec.ReadValue()
		return err
	case jsontext.KindInvalid:
		_, err := p.dec.ReadValue()
		return err
	default:
		return p.wrongType(k, "int")
	}
}

// parseInt parses a JSON number that is an int without a fraction or
// exponent.
func parseInt(v []byte) (int, bool) {
	if len(v) > 0 && len(v) < 19 {
		neg := v[0] == '-'
		d := v
		if neg {
			d = v[1:]
		}
		n := 0
		for _, c := range d {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		if len(d) == 0 {
			return 0, false
		}
		if neg {
			n = -n
		}
		return n, true
	}
	n, err := strconv.ParseInt(string(v), 10, 0)
	return int(n), err == nil
}

// skip consumes one value. Inside a result it is read whole (the decoder
// holds a result at most); elsewhere skipLarge keeps memory bounded.
func (p *parser) skip() error {
	_, err := p.dec.ReadValue()
	return err
}

// skipLarge consumes one value that may be huge (run.artifacts, a
// taxonomy) one element at a time, so the decoder's buffer holds the
// largest element, not the whole value.
func (p *parser) skipLarge() error {
	k := p.dec.PeekKind()
	if k != '{' && k != '[' {
		return p.skip()
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	for p.more() {
		if k == '{' {
			if _, err := p.dec.ReadValue(); err != nil {
				return err
			}
		}
		if err := p.skip(); err != nil {
			return err
		}
	}
	return p.end()
}

// elements reads an array element by element: element must read one. A
// value that is not an array is handled as beginArray says.
func (p *parser) elements(element func() error) error {
	if ok, err := p.beginArray(); !ok || err != nil {
		return err
	}
	for p.more() {
		if err := element(); err != nil {
			return err
		}
	}
	return p.end()
}

// members reads an object member by member: field gets each member's name
// (valid until the next read) and must read its value. A value that is not
// an object is handled as beginObject says.
func (p *parser) members(field func(name []byte) error) error {
	if ok, err := p.beginObject(); !ok || err != nil {
		return err
	}
	for p.more() {
		name, err := p.name()
		if err != nil {
			return err
		}
		if err := field(name); err != nil {
			return err
		}
	}
	return p.end()
}
