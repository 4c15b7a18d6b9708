package sarif

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// backlog holds the results of a run read before the run's tool (gosec,
// for one, writes results first), until the tool resolves their rules. A
// result is packed into 34 bytes; each distinct rule reference, file and
// CWE list is kept once. Past memLimit results the packed records go to a
// temporary file, so the heap does not grow with the run.
type backlog struct {
	dir  string
	recs []packedResult
	file *os.File
	w    *bufio.Writer
	n    int

	rules   []ruleRef
	ruleIdx map[ruleRef]uint32
	files   []string
	fileIdx map[string]uint32
	cwes    [][]string
	cweIdx  map[string]uint32
}

type ruleRef struct {
	id        string
	index     int
	compIndex int
	compName  string
	hasComp   bool
}

type packedResult struct {
	fp       Fingerprint
	score    float64
	rule     uint32
	file     uint32
	cwes     uint32 // 0: none; else index+1
	line     int32
	level    uint8
	hasScore bool
}

var levelCodes = []string{"", LevelError, LevelWarning, LevelNote, LevelNone}

func levelCode(l string) uint8 {
	for i, s := range levelCodes {
		if s == l {
			return uint8(i)
		}
	}
	return 0
}

// memLimit is how many packed results stay in memory (about 640 KiB).
const memLimit = 16 << 10

const packedSize = 34

func (r *packedResult) encode(b *[packedSize]byte) {
	binary.LittleEndian.PutUint64(b[0:], uint64(r.fp))
	binary.LittleEndian.PutUint64(b[8:], math.Float64bits(r.score))
	binary.LittleEndian.PutUint32(b[16:], r.rule)
	binary.LittleEndian.PutUint32(b[20:], r.file)
	binary.LittleEndian.PutUint32(b[24:], r.cwes)
	binary.LittleEndian.PutUint32(b[28:], uint32(r.line))
	b[32] = r.level
	b[33] = 0
	if r.hasScore {
		b[33] = 1
	}
}

func (r *packedResult) decode(b *[packedSize]byte) {
	r.fp = Fingerprint(binary.LittleEndian.Uint64(b[0:]))
	r.score = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	r.rule = binary.LittleEndian.Uint32(b[16:])
	r.file = binary.LittleEndian.Uint32(b[20:])
	r.cwes = binary.LittleEndian.Uint32(b[24:])
	r.line = int32(binary.LittleEndian.Uint32(b[28:]))
	r.level = b[32]
	r.hasScore = b[33] == 1
}

// close removes the spill file, if any.
func (b *backlog) close() {
	if b.file != nil {
		_ = b.file.Close()
		_ = os.Remove(b.file.Name())
		b.file = nil
	}
}

func (b *backlog) push(pr *pendingResult) error {
	if b.ruleIdx == nil {
		b.ruleIdx, b.fileIdx, b.cweIdx = map[ruleRef]uint32{}, map[string]uint32{}, map[string]uint32{}
	}
	ref := ruleRef{id: pr.ruleID, index: pr.ruleIndex, compIndex: pr.compIndex, compName: pr.compName, hasComp: pr.hasComp}
	ri, ok := b.ruleIdx[ref]
	if !ok {
		ri = uint32(len(b.rules))
		b.rules = append(b.rules, ref)
		b.ruleIdx[ref] = ri
	}
	fi, ok := b.fileIdx[pr.file]
	if !ok {
		fi = uint32(len(b.files))
		b.files = append(b.files, pr.file)
		b.fileIdx[pr.file] = fi
	}
	var ci uint32
	if len(pr.cwes) > 0 {
		key := strings.Join(pr.cwes, ",")
		if ci, ok = b.cweIdx[key]; !ok {
			b.cwes = append(b.cwes, pr.cwes)
			ci = uint32(len(b.cwes))
			b.cweIdx[key] = ci
		}
	}
	line := int32(pr.line)
	if pr.line > 1<<31-1 || pr.line < 0 {
		line = 0
	}
	rec := packedResult{
		fp: pr.fp, score: pr.score, rule: ri, file: fi, cwes: ci, line: line,
		level: levelCode(pr.level), hasScore: pr.hasScore,
	}
	b.n++
	if len(b.recs) < memLimit {
		b.recs = append(b.recs, rec)
		return nil
	}
	if b.file == nil {
		f, err := os.CreateTemp(b.dir, "sarif-backlog-*")
		if err != nil {
			return fmt.Errorf("backlog: %w", err)
		}
		b.file, b.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	var buf [packedSize]byte
	rec.encode(&buf)
	if _, err := b.w.Write(buf[:]); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	return nil
}

// each unpacks the results in order.
func (b *backlog) each(fn func(*pendingResult) error) error {
	for i := range b.recs {
		if err := b.unpack(&b.recs[i], fn); err != nil {
			return err
		}
	}
	if b.file == nil {
		return nil
	}
	if err := b.w.Flush(); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	if _, err := b.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	br := bufio.NewReaderSize(b.file, 64<<10)
	var buf [packedSize]byte
	var rec packedResult
	for {
		if _, err := io.ReadFull(br, buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("backlog: %w", err)
		}
		rec.decode(&buf)
		if err := b.unpack(&rec, fn); err != nil {
			return err
		}
	}
}

func (b *backlog) unpack(r *packedResult, fn func(*pendingResult) error) error {
	ref := b.rules[r.rule]
	pr := pendingResult{
		ruleID: ref.id, ruleIndex: ref.index, compIndex: ref.compIndex, compName: ref.compName, hasComp: ref.hasComp,
		level: levelCodes[r.level], score: r.score, hasScore: r.hasScore,
		file: b.files[r.file], line: int(r.line), fp: r.fp,
	}
	if r.cwes > 0 {
		pr.cwes = b.cwes[r.cwes-1]
	}
	return fn(&pr)
}
