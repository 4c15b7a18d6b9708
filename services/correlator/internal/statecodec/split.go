package statecodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/klauspost/compress/s2"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// Layout is the version of the split layout: a namespace's state in the
// key ns.<ns> (its facts but those of PVCs and the uploads, the ledger and
// the journal but its snapshots' pin generations, with the manifest of its
// parts), the facts of its PVCs with their snapshots' pin generations in
// parts ns.<ns>.part.<xx> and its SARIF uploads in parts
// ns.<ns>.part.u<xx>, all written in one atomic batch. Layout 2 kept the
// uploads and every pin generation in the namespace's key (a namespace of
// 1,000 applications wrote ~1 MB of them with every commit, and sorted
// ~20,000 pin generations); it is read, and its next write moves them. A value without an envelope is the single-key layout before both.
const Layout = 3

// MinLayout is the oldest split layout Unwrap reads.
const MinLayout = 2

// Envelope heads a stored value of the split layout. Gen counts the
// namespace's writes; a part carries its name and the Gen of the write that
// stored it, and the namespace's Parts map each part to that Gen, so a reader knows
// whether the parts it read belong to the namespace's value it read.
//
// Outbox (the namespace's key only) holds the decisions of committed
// events that JetStream has not yet acknowledged: they are stored with the
// state that made them and published only once that state is in KV, so a
// decision on the streams always follows from a committed state. A value
// written before the outbox existed has none.
type Envelope struct {
	Layout int               `json:"layout"`
	Gen    uint64            `json:"gen"`
	Part   string            `json:"part,omitempty"`
	Parts  map[string]uint64 `json:"parts,omitempty"`
	Outbox []Pending         `json:"outbox,omitempty"`
}

// Pending is what one event's commit left to publish: its decisions, in
// the order the model made them. Seq orders the records of a namespace
// (they are published in that order); Cause and CauseTime name the event
// that made them, RulesVersion the rules it was decided under.
type Pending struct {
	Seq          uint64            `json:"seq"`
	Cause        string            `json:"cause,omitempty"`
	CauseTime    time.Time         `json:"cause_time"`
	RulesVersion string            `json:"rules_version,omitempty"`
	Decisions    []PendingDecision `json:"decisions"`
}

// PendingDecision is a decision waiting in the outbox: its deterministic
// id (JetStream's Nats-Msg-Id, so a re-publication inside the stream's
// duplicate window is stored once), its type and its payload's JSON.
type PendingDecision struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type stored struct {
	Layout int               `json:"layout"`
	Gen    uint64            `json:"gen"`
	Part   string            `json:"part,omitempty"`
	Parts  map[string]uint64 `json:"parts,omitempty"`
	Outbox []Pending         `json:"outbox,omitempty"`
	State  jsontext.Value    `json:"state"`
}

var envelopePrefix = []byte(`{"layout":`)

// Wrap appends to dst the stored form (compressed) of the state JSON js
// under env.
func Wrap(dst []byte, env Envelope, js []byte) ([]byte, error) {
	// The document to compress is put together in a buffer kept for the
	// next write: it lives only until it is compressed, and allocating it
	// (with the envelope's own) was a sixth of the bytes the correlator
	// allocated.
	bp, _ := docs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer docs.Put(bp)
	doc := slices.Grow((*bp)[:0], 64+12*len(env.Parts)+len(js)+16)
	doc, err := appendEnvelope(doc, env)
	if err != nil {
		return nil, err
	}
	doc = append(doc[:len(doc)-1], `,"state":`...) // the envelope without its '}'
	doc = append(doc, js...)
	doc = append(doc, '}')
	*bp = doc
	return Compress(dst, doc), nil
}

// docs are Wrap's buffers.
var docs sync.Pool

// EncodePart appends the JSON of a part's facts (as a state holding only
// them) to buf[:0]. The encodings of uploads are kept in c for the next
// parts (ForgetUploads drops those of uploads gone).
func (c *Codec) EncodePart(buf []byte, ns string, p *model.PartFacts) ([]byte, error) {
	st := model.NewState(ns)
	st.Snapshots, st.Observations, st.Restores, st.Uploads = p.Snapshots, p.Observations, p.Restores, p.Uploads
	st.Journal.PinGeneration = p.PinGeneration
	size := c.size
	defer func() { c.size = size }()
	c.size = 0
	c.partPass = true
	defer func() { c.partPass = false }()
	return c.Encode(buf, st)
}

// EncodeSplitPart encodes the part name of a namespace's state as
// EncodePart does, from the facts of its PVCs (pvcs, sorted; facts gives
// one PVC's), and reports whether it holds none. changed says whether a
// PVC's facts changed since c last encoded the part: when the part holds
// several PVCs, the encoding of each one's facts is kept for the part's
// next write, which takes over those of the PVCs that did not change
// without reading their facts — at 1,000 PVCs in a namespace a part holds
// about four, and a write read and re-encoded all of them for the one an
// event changed (the spread layout's parts hold one). Such a part lists
// its facts PVC by PVC (each PVC's in key order, as encoding/json would
// for the whole part): JSON objects, read back the same. The kept
// encodings cost the memory of the PVCs' JSON, in such namespaces only (a
// namespace of a few PVCs seldom has two in one part).
func (c *Codec) EncodeSplitPart(buf []byte, ns, name string, pvcs []string, changed func(pvc string) bool, facts func(pvc string) *model.PartFacts) ([]byte, bool, error) {
	if len(pvcs) <= 1 {
		delete(c.kept, name)
		p := &model.PartFacts{}
		if len(pvcs) == 1 {
			p = facts(pvcs[0])
		}
		buf, err := c.EncodePart(buf, ns, p)
		return buf, p.Empty(), err
	}
	if c.kept == nil {
		c.kept = map[string]map[string]*pvcBlock{}
	}
	kept := c.kept[name]
	if kept == nil {
		kept = map[string]*pvcBlock{}
		c.kept[name] = kept
	}
	blocks := make([]*pvcBlock, len(pvcs))
	for i, pvc := range pvcs {
		b := kept[pvc]
		if b == nil || changed(pvc) {
			var err error
			if b, err = c.encodeBlock(facts(pvc)); err != nil {
				delete(c.kept, name)
				return nil, false, fmt.Errorf("PVC %s: %w", pvc, err)
			}
			kept[pvc] = b
		}
		blocks[i] = b
	}
	if len(kept) > len(pvcs) {
		// Forget the PVCs no longer in the part's index (read back).
		for pvc := range kept {
			if _, found := slices.BinarySearch(pvcs, pvc); !found {
				delete(kept, pvc)
			}
		}
	}
	buf = append(buf[:0], `{"namespace":`...)
	buf, err := appendString(buf, ns)
	if err != nil {
		return nil, false, err
	}
	empty := true
	object := func(field string, members func(*pvcBlock) []byte) {
		open := false
		for _, b := range blocks {
			m := members(b)
			if len(m) == 0 {
				continue
			}
			if open {
				buf = append(buf, ',')
			} else {
				buf = append(buf, field...)
				buf = append(buf, '{')
				open = true
			}
			buf = append(buf, m...)
		}
		if open {
			buf = append(buf, '}')
		}
	}
	object(`,"snapshots":`, func(b *pvcBlock) []byte { return b.snaps })
	object(`,"observations":`, func(b *pvcBlock) []byte { return b.obs })
	object(`,"restores":`, func(b *pvcBlock) []byte { return b.restores })
	for _, b := range blocks {
		empty = empty && len(b.snaps) == 0 && len(b.obs) == 0 && len(b.restores) == 0
	}
	buf = append(buf, `,"ledger":{},"journal":{`...)
	object(`"pin_generation":`, func(b *pvcBlock) []byte { return b.pins })
	return append(buf, `}}`...), empty, nil
}

// encodeBlock encodes one PVC's facts for EncodeSplitPart.
func (c *Codec) encodeBlock(p *model.PartFacts) (*pvcBlock, error) {
	var b pvcBlock
	// members are the members of an encoded object, in a copy of their own.
	members := func(js []byte, err error) ([]byte, error) {
		if err != nil || len(js) <= 2 {
			return nil, err
		}
		return slices.Clone(js[1 : len(js)-1]), nil
	}
	var err error
	scratch := c.scratch[:0]
	if len(p.Snapshots) > 0 {
		scratch, err = appendMap(scratch[:0], p.Snapshots, c.appendSnapshot)
		if b.snaps, err = members(scratch, err); err != nil {
			return nil, err
		}
	}
	if len(p.Observations) > 0 {
		scratch, err = appendMap(scratch[:0], p.Observations, appendObservation)
		if b.obs, err = members(scratch, err); err != nil {
			return nil, err
		}
	}
	if len(p.Restores) > 0 {
		scratch, err = appendJSON(scratch[:0], p.Restores)
		if b.restores, err = members(scratch, err); err != nil {
			return nil, err
		}
	}
	if len(p.PinGeneration) > 0 {
		scratch, err = appendMap(scratch[:0], p.PinGeneration, appendInt)
		if b.pins, err = members(scratch, err); err != nil {
			return nil, err
		}
	}
	c.scratch = scratch
	return &b, nil
}

// DropKept forgets the kept encodings of PVCs (EncodeSplitPart), as for a
// namespace idle for a while: its next writes encode them again.
func (c *Codec) DropKept() { c.kept = nil }

// EncodePart returns the JSON of a part's facts with a codec of its own.
func EncodePart(ns string, p *model.PartFacts) ([]byte, error) {
	var c Codec
	return c.EncodePart(nil, ns, p)
}

// ForgetUploads drops the kept encodings of uploads that st no longer
// holds.
func (c *Codec) ForgetUploads(st *model.State) {
	if len(c.uploads) <= len(st.Uploads) {
		return
	}
	for id := range c.uploads {
		if _, ok := st.Uploads[id]; !ok {
			delete(c.uploads, id)
		}
	}
}

// Unwrap reads a stored value: the envelope (Layout 0 for a value of the
// single-key layout) and the state it holds, decoded into st.
func Unwrap(data []byte, st *model.State) (Envelope, error) {
	data, err := expand(data)
	if err != nil {
		return Envelope{}, err
	}
	if !bytes.HasPrefix(data, envelopePrefix) {
		return Envelope{}, jsonv2.Unmarshal(data, st, decodeOptions)
	}
	var s stored
	if err := jsonv2.Unmarshal(data, &s, decodeOptions); err != nil {
		return Envelope{}, err
	}
	if s.Layout < MinLayout || s.Layout > Layout {
		return Envelope{}, fmt.Errorf("stored state of layout %d, this correlator knows %d to %d", s.Layout, MinLayout, Layout)
	}
	env := Envelope{Layout: s.Layout, Gen: s.Gen, Part: s.Part, Parts: s.Parts, Outbox: s.Outbox}
	return env, jsonv2.Unmarshal(s.State, st, decodeOptions)
}

// PeekOutbox reads only the outbox of a stored namespace's value (none for
// a value of the single-key layout): the sweep at start looks for
// namespaces with decisions left to publish without decoding their states.
func PeekOutbox(data []byte) ([]Pending, error) {
	data, err := expand(data)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(data, envelopePrefix) {
		return nil, nil
	}
	var head struct {
		Outbox []Pending `json:"outbox"`
	}
	if err := jsonv2.Unmarshal(data, &head, decodeOptions); err != nil {
		return nil, err
	}
	return head.Outbox, nil
}

// DecodePart reads a part's stored value into its facts.
func DecodePart(data []byte, ns string) (Envelope, *model.PartFacts, error) {
	st := model.NewState(ns)
	env, err := Unwrap(data, st)
	if err != nil {
		return env, nil, err
	}
	if env.Layout < MinLayout || env.Part == "" {
		return env, nil, fmt.Errorf("not the value of a part (layout %d, part %q)", env.Layout, env.Part)
	}
	return env, &model.PartFacts{Snapshots: st.Snapshots, Observations: st.Observations, Restores: st.Restores,
		PinGeneration: st.Journal.PinGeneration, Uploads: st.Uploads}, nil
}

// expand undoes Compress (a value that is plain JSON is returned as is).
func expand(data []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(data, compressedPrefix)
	if !ok {
		return data, nil
	}
	n, err := s2.DecodedLen(rest)
	if err != nil {
		return nil, fmt.Errorf("compressed state: %w", err)
	}
	if n > maxStateBytes {
		return nil, fmt.Errorf("compressed state expands to %d bytes, more than %d", n, maxStateBytes)
	}
	out, err := s2.Decode(make([]byte, n), rest)
	if err != nil {
		return nil, fmt.Errorf("compressed state: %w", err)
	}
	return out, nil
}

// appendEnvelope writes env as encoding/json does (its fields in order,
// the manifest's keys sorted), by hand: reflection over a manifest of up
// to 256 parts was a tenth of a namespace's write.
func appendEnvelope(buf []byte, env Envelope) ([]byte, error) {
	var err error
	buf = append(buf, `{"layout":`...)
	buf = strconv.AppendInt(buf, int64(env.Layout), 10)
	buf = append(buf, `,"gen":`...)
	buf = strconv.AppendUint(buf, env.Gen, 10)
	if env.Part != "" {
		if buf, err = appendField(buf, `,"part":`, env.Part); err != nil {
			return nil, err
		}
	}
	if len(env.Parts) > 0 {
		buf = append(buf, `,"parts":`...)
		if buf, err = appendMap(buf, env.Parts, func(b []byte, v uint64) ([]byte, error) { return strconv.AppendUint(b, v, 10), nil }); err != nil {
			return nil, err
		}
	}
	if len(env.Outbox) > 0 {
		buf = append(buf, `,"outbox":[`...)
		for i := range env.Outbox {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendPending(buf, &env.Outbox[i]); err != nil {
				return nil, err
			}
		}
		buf = append(buf, ']')
	}
	return append(buf, '}'), nil
}

// appendPending writes an outbox record as encoding/json does. A payload
// is JSON that json.Marshal wrote (or read back from such), so it is
// copied as it is when it is what encoding/json would write for it —
// compact, with '<', '>', '&' and non-ASCII escaped —; otherwise the record
// goes through encoding/json (reflection and the payload's compaction
// were a tenth of a write's work).
func appendPending(buf []byte, p *Pending) ([]byte, error) {
	for _, d := range p.Decisions {
		if !compactASCII(d.Payload) {
			return appendJSON(buf, p)
		}
	}
	var err error
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, p.Seq, 10)
	if p.Cause != "" {
		if buf, err = appendField(buf, `,"cause":`, p.Cause); err != nil {
			return nil, err
		}
	}
	buf = append(buf, `,"cause_time":`...)
	if buf, err = appendTime(buf, p.CauseTime); err != nil {
		return nil, err
	}
	if p.RulesVersion != "" {
		if buf, err = appendField(buf, `,"rules_version":`, p.RulesVersion); err != nil {
			return nil, err
		}
	}
	buf = append(buf, `,"decisions":`...)
	if p.Decisions == nil {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, '[')
		for i := range p.Decisions {
			d := &p.Decisions[i]
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendField(buf, `{"id":`, d.ID); err != nil {
				return nil, err
			}
			if buf, err = appendField(buf, `,"type":`, d.Type); err != nil {
				return nil, err
			}
			buf = append(buf, `,"payload":`...)
			if d.Payload == nil {
				buf = append(buf, "null"...)
			} else {
				buf = append(buf, d.Payload...)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	return append(buf, '}'), nil
}

// compactASCII reports whether the JSON js is written as encoding/json
// compacts a RawMessage: no whitespace outside strings, none of '<', '>',
// '&' and only ASCII anywhere (encoding/json escapes U+2028 and U+2029).
// It does not validate js.
func compactASCII(js []byte) bool {
	in := false
	for i := 0; i < len(js); i++ {
		switch c := js[i]; {
		case c >= 0x80 || c == '<' || c == '>' || c == '&':
			return false
		case in && c == '\\':
			i++ // the escaped byte
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}
