package statecodec

import (
	"slices"
	"strconv"
	"time"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/ordered"
)

// Hand-written appenders for the parts of a state that make up nearly all
// of it (snapshots, the pins and the journal), writing what encoding/json
// writes for them, field by field in the order and with the omitempty rules
// of their struct tags. TestCodecWritesWhatEncodingJSONWrites compares
// them with encoding/json after every event of two long runs. They replace
// a cache of each snapshot's encoding, which was fast but kept a few
// hundred bytes per snapshot on the heap: over 40% of the correlator's
// live heap at 10,000 applications. (Only the parts that hold several
// PVCs keep their PVCs' encodings, EncodeSplitPart: at two applications
// per namespace hardly any part does.)

// appendSnapshot writes s, its workloads from c's kept encodings.
func (c *Codec) appendSnapshot(buf []byte, s *model.Snapshot) ([]byte, error) {
	var err error
	buf = append(buf, `{"name":`...)
	buf, err = appendString(buf, s.Name)
	if err != nil {
		return nil, err
	}
	if s.PVC != "" {
		if buf, err = appendField(buf, `,"pvc":`, s.PVC); err != nil {
			return nil, err
		}
	}
	if s.EventID != "" {
		if buf, err = appendField(buf, `,"event_id":`, s.EventID); err != nil {
			return nil, err
		}
	}
	buf = append(buf, `,"time":`...)
	if buf, err = appendTime(buf, s.Time); err != nil {
		return nil, err
	}
	if s.Completed {
		buf = append(buf, `,"completed":true`...)
	}
	if s.RestoreSize != "" {
		if buf, err = appendField(buf, `,"restore_size":`, s.RestoreSize); err != nil {
			return nil, err
		}
	}
	if s.Encryption != "" {
		if buf, err = appendField(buf, `,"encryption":`, s.Encryption); err != nil {
			return nil, err
		}
	}
	if len(s.EncryptionEvidence) > 0 {
		buf = append(buf, `,"encryption_evidence":`...)
		if buf, err = appendStrings(buf, s.EncryptionEvidence); err != nil {
			return nil, err
		}
	}
	if len(s.Workloads) > 0 {
		buf = append(buf, `,"workloads":`...)
		if buf, err = c.appendWorkloads(buf, s.Workloads); err != nil {
			return nil, err
		}
	}
	if len(s.Failed) > 0 {
		buf = append(buf, `,"failed":`...)
		if buf, err = appendStrings(buf, s.Failed); err != nil {
			return nil, err
		}
	}
	if len(s.Verifications) > 0 {
		buf = append(buf, `,"verifications":`...)
		if buf, err = appendMap(buf, s.Verifications, appendBool); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

// appendWorkloads writes a list of workloads. The snapshots of a
// namespace share their lists (model.State.shareWorkloads: an app's
// snapshots repeat the same pods and versions), so a list's encoding is
// kept for the next snapshot that has it — the workloads were two fifths
// of a snapshot's encoding, and a PVC's part, with every snapshot of the
// PVC, is encoded again with each of them. A list is known by its array
// and length: nobody changes a list once it is on a snapshot, and the key
// keeps the array from being freed and its address reused. The kept
// encodings start afresh when they outgrow the lists a namespace uses.
func (c *Codec) appendWorkloads(buf []byte, ws []model.Workload) ([]byte, error) {
	k := workloadsKey{&ws[0], len(ws)}
	if data, ok := c.workloads[k]; ok {
		return append(buf, data...), nil
	}
	start := len(buf)
	buf = append(buf, '[')
	var err error
	for i := range ws {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, err = appendWorkload(buf, &ws[i]); err != nil {
			return nil, err
		}
	}
	buf = append(buf, ']')
	if c.workloads == nil || len(c.workloads) >= maxKeptWorkloads {
		c.workloads = map[workloadsKey][]byte{}
	}
	c.workloads[k] = slices.Clone(buf[start:])
	return buf, nil
}

// workloadsKey names a list of workloads: its first element and length.
type workloadsKey struct {
	first *model.Workload
	n     int
}

// maxKeptWorkloads bounds the encodings of workload lists a Codec keeps
// (a namespace of two applications uses a few dozen lists).
const maxKeptWorkloads = 256

func appendObservation(buf []byte, o *model.Observation) ([]byte, error) {
	if o == nil {
		return append(buf, "null"...), nil
	}
	var err error
	if buf, err = appendField(buf, `{"event_id":`, o.EventID); err != nil {
		return nil, err
	}
	if buf, err = appendField(buf, `,"pvc":`, o.PVC); err != nil {
		return nil, err
	}
	buf = append(buf, `,"time":`...)
	if buf, err = appendTime(buf, o.Time); err != nil {
		return nil, err
	}
	if len(o.Workloads) > 0 {
		buf = append(buf, `,"workloads":[`...)
		for i := range o.Workloads {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendWorkload(buf, &o.Workloads[i]); err != nil {
				return nil, err
			}
		}
		buf = append(buf, ']')
	}
	if len(o.Secrets) > 0 {
		buf = append(buf, `,"secrets":`...)
		if buf, err = appendMap(buf, o.Secrets, appendStrings); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendWorkload(buf []byte, w *model.Workload) ([]byte, error) {
	var err error
	if buf, err = appendField(buf, `{"app":`, w.App); err != nil {
		return nil, err
	}
	if w.Pod != "" {
		if buf, err = appendField(buf, `,"pod":`, w.Pod); err != nil {
			return nil, err
		}
	}
	if o := w.Owner; o != nil {
		buf = append(buf, `,"owner":{`...)
		if o.Kind != "" {
			if buf, err = appendField(buf, `"kind":`, o.Kind); err != nil {
				return nil, err
			}
			buf = append(buf, ',')
		}
		if buf, err = appendField(buf, `"namespace":`, o.Namespace); err != nil {
			return nil, err
		}
		if buf, err = appendField(buf, `,"name":`, o.Name); err != nil {
			return nil, err
		}
		buf = append(buf, '}')
	}
	if w.Label != "" {
		if buf, err = appendField(buf, `,"label":`, w.Label); err != nil {
			return nil, err
		}
	}
	if w.Commit != "" {
		if buf, err = appendField(buf, `,"commit":`, w.Commit); err != nil {
			return nil, err
		}
	}
	buf = append(buf, `,"versions":`...)
	if buf, err = appendStrings(buf, w.Versions); err != nil {
		return nil, err
	}
	return append(buf, '}'), nil
}

// appendStrings writes a string slice; nil is null, as encoding/json has it.
func appendStrings(buf []byte, list []string) ([]byte, error) {
	if list == nil {
		return append(buf, "null"...), nil
	}
	buf = append(buf, '[')
	var err error
	for i, s := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, err = appendString(buf, s); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

// appendTime writes t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds); the rare times it refuses or writes differently (years
// outside 0–9999, offsets not in whole minutes) go through encoding/json.
func appendTime(buf []byte, t time.Time) ([]byte, error) {
	if _, off := t.Zone(); t.Year() < 0 || t.Year() > 9999 || off%60 != 0 {
		return appendJSON(buf, t)
	}
	buf = append(buf, '"')
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	return append(buf, '"'), nil
}

func appendLedger(buf []byte, l *model.Ledger) ([]byte, error) {
	var err error
	buf = append(buf, '{')
	comma := false
	if len(l.Pinned) > 0 {
		buf = append(buf, `"pinned":`...)
		if buf, err = appendMap(buf, l.Pinned, appendPin); err != nil {
			return nil, err
		}
		comma = true
	}
	if len(l.Incidents) > 0 {
		if comma {
			buf = append(buf, ',')
		}
		buf = append(buf, `"incidents":`...)
		if buf, err = appendJSON(buf, l.Incidents); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendPin(buf []byte, p model.Pin) ([]byte, error) {
	var err error
	buf = append(buf, '{')
	if p.PVC != "" {
		if buf, err = appendField(buf, `"pvc":`, p.PVC); err != nil {
			return nil, err
		}
		buf = append(buf, ',')
	}
	if buf, err = appendField(buf, `"reason":`, p.Reason); err != nil {
		return nil, err
	}
	if p.Incident != "" {
		if buf, err = appendField(buf, `,"incident":`, p.Incident); err != nil {
			return nil, err
		}
	}
	if len(p.Causes) > 0 {
		buf = append(buf, `,"causes":`...)
		if buf, err = appendStrings(buf, p.Causes); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendJournal(buf []byte, j *model.Journal) ([]byte, error) {
	var err error
	buf = append(buf, '{')
	comma := false
	field := func(name string) {
		if comma {
			buf = append(buf, ',')
		}
		buf = append(buf, name...)
		comma = true
	}
	if len(j.PinGeneration) > 0 {
		field(`"pin_generation":`)
		if buf, err = appendMap(buf, j.PinGeneration, appendInt); err != nil {
			return nil, err
		}
	}
	if len(j.Published) > 0 {
		field(`"published":`)
		if buf, err = appendMap(buf, j.Published, appendBool); err != nil {
			return nil, err
		}
	}
	if len(j.IncidentGeneration) > 0 {
		field(`"incident_generation":`)
		if buf, err = appendMap(buf, j.IncidentGeneration, appendInt); err != nil {
			return nil, err
		}
	}
	if len(j.Recommended) > 0 {
		field(`"recommended":`)
		if buf, err = appendJSON(buf, j.Recommended); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

// appendMap writes m as encoding/json does: an object with its keys
// sorted, each value written by value.
func appendMap[V any](buf []byte, m map[string]V, value func([]byte, V) ([]byte, error)) ([]byte, error) {
	return appendMapInOrder(buf, m, ordered.Keys(m), value)
}

// appendMapInOrder is appendMap with the keys of m already sorted.
func appendMapInOrder[V any](buf []byte, m map[string]V, keys []string, value func([]byte, V) ([]byte, error)) ([]byte, error) {
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
		if buf, err = value(buf, m[k]); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendBool(buf []byte, b bool) ([]byte, error) { return strconv.AppendBool(buf, b), nil }

func appendInt(buf []byte, n int) ([]byte, error) { return strconv.AppendInt(buf, int64(n), 10), nil }

// appendField writes name (the key with its punctuation, `,"pod":`) and s.
func appendField(buf []byte, name, s string) ([]byte, error) {
	return appendString(append(buf, name...), s)
}
