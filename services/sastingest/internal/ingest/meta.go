package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Metadata describes an upload; it is given by the uploader, not read from
// the log.
type Metadata struct {
	Repository  string   `json:"repository"`
	CommitSHA   string   `json:"commit_sha"`
	Ref         string   `json:"ref"`
	Category    string   `json:"category"`
	App         string   `json:"app"`
	Namespace   string   `json:"namespace"`
	Version     string   `json:"version"`
	Environment string   `json:"environment"`
	Images      []string `json:"images"`
}

// Bounds of upload metadata. Every identifier ends up in an event, a key
// or a subject of NATS here or in the correlator, whose control lines are
// 4 KiB: each is bounded in length and character set at the edge.
const (
	MaxRepositoryBytes = 255
	MaxRefBytes        = 255
	MaxCategoryBytes   = 255
	MaxVersionBytes    = 128
	MaxLabelBytes      = 63 // app, namespace, environment: Kubernetes names
	MaxImageBytes      = 512
	MaxImages          = 32
)

// Validate reports metadata that cannot be stored: missing, too long, or
// with characters an identifier may not hold. Each reason names the field.
func (m *Metadata) Validate() error {
	var errs []error
	bad := func(field, value, why string) {
		errs = append(errs, fmt.Errorf("%s %s %s", field, quoteShort(value), why))
	}
	switch {
	case m.Repository == "":
		errs = append(errs, errors.New("repository is required"))
	case len(m.Repository) > MaxRepositoryBytes:
		bad("repository", m.Repository, fmt.Sprintf("is %d bytes, over the limit of %d", len(m.Repository), MaxRepositoryBytes))
	case !validRepository(m.Repository):
		bad("repository", m.Repository, "is not owner/name (letters, digits, '.', '_', '-' between slashes)")
	}
	if m.CommitSHA != "" && (!isHex(m.CommitSHA) || len(m.CommitSHA) > 64) {
		bad("commit_sha", m.CommitSHA, "is not a hexadecimal SHA of at most 64 digits")
	}
	checkText := func(field, value string, limit int, spaces bool) {
		switch {
		case len(value) > limit:
			bad(field, value, fmt.Sprintf("is %d bytes, over the limit of %d", len(value), limit))
		case spaces && !printable(strings.ReplaceAll(value, " ", "")):
			bad(field, value, "holds control characters or non-ASCII")
		case !spaces && !printable(value):
			bad(field, value, "holds white space, control characters or non-ASCII")
		}
	}
	checkText("ref", m.Ref, MaxRefBytes, false)
	checkText("category", m.Category, MaxCategoryBytes, true) // GitHub's tool_name may hold spaces
	checkText("version", m.Version, MaxVersionBytes, false)
	for _, f := range []struct{ field, value string }{{"app", m.App}, {"environment", m.Environment}} {
		if f.value != "" && !validLabelValue(f.value) {
			bad(f.field, f.value, fmt.Sprintf("is not a Kubernetes label value (at most %d letters, digits, '.', '_', '-', alphanumeric at both ends)", MaxLabelBytes))
		}
	}
	if m.Namespace != "" && !validNamespace(m.Namespace) {
		bad("namespace", m.Namespace, fmt.Sprintf("is not a Kubernetes namespace name (at most %d lowercase letters, digits, '-', alphanumeric at both ends)", MaxLabelBytes))
	}
	if len(m.Images) > MaxImages {
		errs = append(errs, fmt.Errorf("%d images, over the limit of %d", len(m.Images), MaxImages))
	}
	for _, img := range m.Images[:min(len(m.Images), MaxImages)] {
		switch {
		case len(img) > MaxImageBytes || !printable(img):
			bad("image", img, fmt.Sprintf("is not an image reference of at most %d printable bytes", MaxImageBytes))
		case !strings.Contains(img, "@sha256:"):
			bad("image", img, "has no @sha256: digest")
		}
	}
	return errors.Join(errs...)
}

// quoteShort quotes a value for an error, cut to 64 bytes: a reason must
// not repeat a 5,000-byte id back.
func quoteShort(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

// validRepository reports whether s is owner/name (or a GitLab
// group/subgroup/name): segments of letters, digits, '.', '_' and '-'.
func validRepository(s string) bool {
	segs := strings.Split(s, "/")
	if len(segs) < 2 {
		return false
	}
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !alnum(seg[i]) && seg[i] != '.' && seg[i] != '_' && seg[i] != '-' {
				return false
			}
		}
	}
	return true
}

// validLabelValue is Kubernetes' rule for a label value.
func validLabelValue(s string) bool {
	if len(s) > MaxLabelBytes || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-' {
			return false
		}
	}
	return true
}

// validNamespace is Kubernetes' rule for a namespace (an RFC 1123 label).
func validNamespace(s string) bool {
	if len(s) > MaxLabelBytes || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// printable reports whether s is printable ASCII without white space.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isHex(s string) bool {
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// UploadID derives an upload's id from the SHA-256 of the uncompressed log
// and the metadata: the same log posted again with the same metadata has
// the same id.
func UploadID(contentSHA256 []byte, m Metadata) string {
	m.Images = slices.Clone(m.Images)
	slices.Sort(m.Images)
	meta, _ := json.Marshal(m)
	h := sha256.New()
	h.Write(contentSHA256)
	h.Write([]byte{'\n'})
	h.Write(meta)
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// ValidUploadID reports whether id has the form UploadID gives: 40
// lowercase hex digits. Anything else is refused before it reaches a key.
func ValidUploadID(id string) bool {
	if len(id) != 40 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if (id[i] < '0' || id[i] > '9') && (id[i] < 'a' || id[i] > 'f') {
			return false
		}
	}
	return true
}

// BaselineKey names the previous upload a new one is compared with: the
// last upload of the same repository, category and ref.
func BaselineKey(m Metadata) string {
	h := sha256.Sum256([]byte(m.Repository + "\x00" + m.Category + "\x00" + m.Ref))
	return hex.EncodeToString(h[:16])
}
