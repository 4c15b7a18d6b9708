package statecodec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/klauspost/compress/s2"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// The state is stored as JSON, byte for byte what encoding/json writes for
// a model.State, compressed (see Compress; `stateguardctl status` and the
// query API show it decoded) — but for a part of several PVCs, which lists
// its facts PVC by PVC (EncodeSplitPart).
//
// Encoding a whole namespace for every group commit was the correlator's
// largest cost, yet snapshots and uploads, nine tenths of a state, hardly
// change once known. Snapshots, the pins and the journal are written by
// hand-written appenders (append.go, several times faster than reflection);
// an upload's encoding (its findings can be long) is kept and reused while
// it is the same upload event; the rest goes through encoding/json.
type Codec struct {
	uploads map[string]fragment[string]
	// certs is the certificates' encoding, kept while they are the same.
	certs     fragment[uint64]
	certsKept bool
	size      int // of the last encoding, to allocate the next one at once
	// partPass is set while EncodePart encodes one part's uploads: the
	// kept encodings of the other parts' uploads stay.
	partPass bool
	// workloads are the encodings of the workload lists of snapshots
	// (appendWorkloads).
	workloads map[workloadsKey][]byte
	// kept are, by part and PVC, the encodings of the facts of the PVCs
	// of the parts that hold several (EncodeSplitPart).
	kept    map[string]map[string]*pvcBlock
	scratch []byte
}

// pvcBlock is the encoding of one PVC's facts in its part: the members of
// the part's objects of snapshots, observations, restores and pin
// generations that are the PVC's, without the braces.
type pvcBlock struct {
	snaps, obs, restores, pins []byte
}

type fragment[V comparable] struct {
	v    V
	data []byte
}

func uploadVersion(u *model.Upload) string { return u.EventID }

// Encode appends the encoding of st to buf[:0] (growing it to the size of
// the last encoding at once) and returns it. A Codec encodes the states of
// one namespace, one at a time.
func (c *Codec) Encode(buf []byte, st *model.State) ([]byte, error) {
	buf = slices.Grow(buf[:0], c.size+c.size/8+512)
	buf = append(buf, `{"namespace":`...)
	buf, err := appendString(buf, st.Namespace)
	if err != nil {
		return nil, err
	}
	if len(st.Uploads) > 0 {
		buf = append(buf, `,"uploads":`...)
		if buf, err = appendCached(buf, st.Uploads, &c.uploads, uploadVersion, !c.partPass); err != nil {
			return nil, err
		}
	}
	if len(st.Snapshots) > 0 {
		buf = append(buf, `,"snapshots":`...)
		if buf, err = appendMapInOrder(buf, st.Snapshots, st.SnapshotNames(), c.appendSnapshot); err != nil {
			return nil, err
		}
	}
	if len(st.Certs) > 0 {
		buf = append(buf, `,"certs":`...)
		if !c.certsKept || c.certs.v != st.CertsVersion() {
			data, err := json.Marshal(st.Certs)
			if err != nil {
				return nil, err
			}
			c.certs, c.certsKept = fragment[uint64]{v: st.CertsVersion(), data: data}, true
		}
		buf = append(buf, c.certs.data...)
	}
	// Lineage facts and operator decisions, in the order of State's
	// fields: observations by hand (a PVC's part is written with every
	// snapshot of it), the rest few and small (encoding/json).
	if len(st.Observations) > 0 {
		buf = append(buf, `,"observations":`...)
		if buf, err = appendMap(buf, st.Observations, appendObservation); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		v    any
		n    int
	}{
		{`,"restores":`, st.Restores, len(st.Restores)},
		{`,"resolutions":`, st.Resolutions, len(st.Resolutions)},
		{`,"dismissals":`, st.Dismissals, len(st.Dismissals)},
	} {
		if f.n == 0 {
			continue
		}
		buf = append(buf, f.name...)
		if buf, err = appendJSON(buf, f.v); err != nil {
			return nil, err
		}
	}
	buf = append(buf, `,"ledger":`...)
	if buf, err = appendLedger(buf, &st.Ledger); err != nil {
		return nil, err
	}
	buf = append(buf, `,"journal":`...)
	if buf, err = appendJournal(buf, &st.Journal); err != nil {
		return nil, err
	}
	buf = append(buf, '}')
	c.size = len(buf)
	return buf, nil
}

// appendCached appends m as encoding/json would (keys sorted), each value
// from the cache while its version holds.
func appendCached[T any, V comparable](buf []byte, m map[string]*T, cache *map[string]fragment[V], version func(*T) V, forget bool) ([]byte, error) {
	if *cache == nil {
		*cache = map[string]fragment[V]{}
	}
	keys := ordered.Keys(m)
	buf = append(buf, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, err = appendString(buf, k); err != nil {
			return nil, err
		}
		buf = append(buf, ':')
		v := version(m[k])
		f, ok := (*cache)[k]
		if !ok || f.v != v {
			data, err := json.Marshal(m[k])
			if err != nil {
				return nil, err
			}
			f = fragment[V]{v: v, data: data}
			(*cache)[k] = f
		}
		buf = append(buf, f.data...)
	}
	// Forget what the model pruned.
	if forget && len(*cache) > len(m) {
		for k := range *cache {
			if _, ok := m[k]; !ok {
				delete(*cache, k)
			}
		}
	}
	return append(buf, '}'), nil
}

// appendString quotes s as encoding/json does; names of Kubernetes objects
// and event ids need no escaping, anything else goes through encoding/json.
func appendString(buf []byte, s string) ([]byte, error) {
	// Eight bytes at a time (the scan was 5% of the correlator's time):
	// names, digests and event ids hardly ever need escaping.
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if needsEscape(binary.LittleEndian.Uint64([]byte(s[i : i+8]))) {
			return appendJSON(buf, s)
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendJSON(buf, s)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"'), nil
}

// needsEscape reports whether any of the eight bytes in x is one that
// encoding/json escapes or checks (control characters, '"', '\\', '<',
// '>', '&') or any byte outside ASCII's printable range, with the
// word-at-a-time tests of "Bit Twiddling Hacks" (haszero, hasless,
// hasmore), each exact about whether such a byte exists.
func needsEscape(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	control := (x - ones*0x20) & ^x & highs    // a byte < 0x20
	above := (x + ones*(127-0x7e) | x) & highs // a byte > 0x7e
	special := hasZero(x^(ones*'"')) | hasZero(x^(ones*'\\')) | hasZero(x^(ones*'<')) |
		hasZero(x^(ones*'>')) | hasZero(x^(ones*'&'))
	return control|above|special != 0
}

func appendJSON(buf []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, data...), nil
}

// decodeOptions read what encoding/json wrote (null for nil slices and
// maps) with the encoding/json/v2 implementation, 1.6–2× as fast as
// encoding/json with a third fewer allocations (BenchmarkStateCodec).
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.FormatNilSliceAsNull(true),
	jsonv2.FormatNilMapAsNull(true),
	jsontext.AllowInvalidUTF8(true),
)

// A state in KV is its JSON, compressed with S2 (klauspost/compress) after
// compressedPrefix: a namespace's state at full history is ~31 KB of JSON
// and ~4 KB compressed (8 µs to compress, 29 µs to expand), and every byte
// of it goes to disk twice per write (an atomic batch is staged before it
// is committed). A value that starts with '{' is plain JSON (states written
// before compression, or by hand).
var compressedPrefix = []byte("\x00s2\x00")

// maxStateBytes bounds the JSON a compressed state may expand to.
const maxStateBytes = 256 << 20

// Compress appends the stored form of the JSON state js to dst.
func Compress(dst, js []byte) []byte {
	n := len(compressedPrefix) + s2.MaxEncodedLen(len(js))
	if cap(dst) < n {
		dst = make([]byte, 0, n)
	}
	dst = append(dst[:0], compressedPrefix...)
	enc := s2.Encode(dst[len(dst):n], js)
	return dst[:len(compressedPrefix)+len(enc)]
}

// Decode reads a stored state (compressed or plain JSON) into st.
func Decode(data []byte, st *model.State) error {
	if rest, ok := bytes.CutPrefix(data, compressedPrefix); ok {
		n, err := s2.DecodedLen(rest)
		if err != nil {
			return fmt.Errorf("compressed state: %w", err)
		}
		if n > maxStateBytes {
			return fmt.Errorf("compressed state expands to %d bytes, more than %d", n, maxStateBytes)
		}
		if data, err = s2.Decode(make([]byte, n), rest); err != nil {
			return fmt.Errorf("compressed state: %w", err)
		}
	}
	return jsonv2.Unmarshal(data, st, decodeOptions)
}
