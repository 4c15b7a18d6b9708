package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// Header names of the NATS binding.
const (
	headerPrefix      = "ce-"
	headerContentType = "Content-Type"
	// Structured mode content type, accepted on read.
	structuredContentType = "application/cloudevents+json"
)

// Encode writes ev onto a NATS message in binary content mode: every
// attribute as a percent-encoded ce- header, the data as the body, the data
// content type as Content-Type, and Nats-Msg-Id set to the event id so
// JetStream de-duplicates re-sends.
func Encode(ev Event) (*nats.Msg, error) {
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	m := nats.NewMsg(SubjectOf(ev.Type()))
	// The header values share one backing array (each capped at its one
	// value), not one allocation per header.
	vals := make([]string, 0, 12)
	h := headerSetter{h: m.Header, vals: &vals}
	h.Set(headerPrefix+"specversion", ev.SpecVersion())
	h.Set(headerPrefix+"id", pctEncode(ev.ID()))
	h.Set(headerPrefix+"source", pctEncode(ev.Source()))
	h.Set(headerPrefix+"type", pctEncode(ev.Type()))
	if s := ev.Subject(); s != "" {
		h.Set(headerPrefix+"subject", pctEncode(s))
	}
	if t := ev.Time(); !t.IsZero() {
		h.Set(headerPrefix+"time", t.UTC().Format(time.RFC3339Nano))
	}
	if s := ev.DataSchema(); s != "" {
		h.Set(headerPrefix+"dataschema", pctEncode(s))
	}
	for name, v := range ev.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			return nil, fmt.Errorf("encode extension %s: %w", name, err)
		}
		h.Set(headerPrefix+name, pctEncode(s))
		if name == extTraceparent || name == extTracestate {
			// W3C trace context also as plain headers, for tools that read
			// those and not the CloudEvents extension.
			h.Set(name, s)
		}
	}
	if ct := ev.DataContentType(); ct != "" {
		h.Set(headerContentType, ct)
	}
	h.Set(nats.MsgIdHdr, ev.ID())
	m.Data = ev.Data()
	return m, nil
}

type headerSetter struct {
	h    nats.Header
	vals *[]string
}

func (s headerSetter) Set(key, value string) {
	*s.vals = append(*s.vals, value)
	n := len(*s.vals)
	s.h[key] = (*s.vals)[n-1 : n : n]
}

// Decode reads a CloudEvent from a NATS message in binary or structured
// content mode.
func DecodeMsg(m *nats.Msg) (Event, error) {
	return decode(m.Header, m.Data)
}

func decode(h nats.Header, data []byte) (Event, error) {
	ct := h.Get(headerContentType)
	if h.Get(headerPrefix+"specversion") == "" {
		if !strings.HasPrefix(ct, structuredContentType) && !looksStructured(data) {
			return Event{}, fmt.Errorf("%w: no ce-specversion header and not structured mode", ErrMalformed)
		}
		var ev event.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return Event{}, fmt.Errorf("%w: structured: %w", ErrMalformed, err)
		}
		// The SDK's setters trim white space and its JSON reader does not:
		// read the attributes as binary mode does, so one event is the
		// same event in either mode (found by FuzzDecodeMsg: type " 0").
		ev.SetID(ev.ID())
		ev.SetSource(ev.Source())
		ev.SetType(ev.Type())
		if ev.Subject() != "" {
			ev.SetSubject(ev.Subject())
		}
		if err := ev.Validate(); err != nil {
			return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return ev, nil
	}
	if sv := h.Get(headerPrefix + "specversion"); sv != event.CloudEventsVersionV1 {
		return Event{}, fmt.Errorf("%w: unsupported specversion %q", ErrMalformed, sv)
	}
	ev := event.New(event.CloudEventsVersionV1)
	for key, vals := range h {
		lk := strings.ToLower(key)
		if !strings.HasPrefix(lk, headerPrefix) || len(vals) == 0 {
			continue
		}
		name := lk[len(headerPrefix):]
		val, err := pctDecode(vals[0])
		if err != nil {
			return Event{}, fmt.Errorf("%w: header %s: %w", ErrMalformed, key, err)
		}
		// nats.go's header values are substrings of the message's whole
		// header block: a consumer that keeps an event's id (the correlator
		// keeps thousands) would keep every block alive with it.
		val = strings.Clone(val)
		switch name {
		case "specversion":
		case "id":
			ev.SetID(val)
		case "source":
			ev.SetSource(val)
		case "type":
			ev.SetType(val)
		case "subject":
			ev.SetSubject(val)
		case "dataschema":
			if !setSchema(&ev, ourSchemas.byURL[val]) {
				ev.SetDataSchema(val)
			}
		case "time":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return Event{}, fmt.Errorf("%w: ce-time: %w", ErrMalformed, err)
			}
			ev.SetTime(t)
		default:
			ev.SetExtension(name, val)
		}
	}
	if ct != "" {
		ev.SetDataContentType(strings.Clone(ct))
	}
	if len(data) > 0 {
		ev.DataEncoded = data
	}
	if err := ev.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return ev, nil
}

func looksStructured(data []byte) bool {
	s := strings.TrimSpace(string(data[:min(len(data), 256)]))
	return strings.HasPrefix(s, "{") && strings.Contains(s, `"specversion"`)
}

// pctEncode percent-encodes what the CloudEvents HTTP/NATS bindings require:
// space, double quote, percent and every byte outside printable ASCII.
func pctEncode(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func pctDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated percent escape in %q", s)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad percent escape in %q", s)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
