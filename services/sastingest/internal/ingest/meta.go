package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// Validate reports metadata that cannot be stored.
func (m *Metadata) Validate() error {
	var errs []error
	if m.Repository == "" {
		errs = append(errs, errors.New("repository is required"))
	} else if strings.Count(m.Repository, "/") < 1 || strings.HasPrefix(m.Repository, "/") || strings.HasSuffix(m.Repository, "/") {
		errs = append(errs, fmt.Errorf("repository %q is not owner/name", m.Repository))
	}
	for _, img := range m.Images {
		if !strings.Contains(img, "@sha256:") {
			errs = append(errs, fmt.Errorf("image %q has no @sha256: digest", img))
		}
	}
	if m.CommitSHA != "" && !isHex(m.CommitSHA) {
		errs = append(errs, fmt.Errorf("commit_sha %q is not hexadecimal", m.CommitSHA))
	}
	return errors.Join(errs...)
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

// BaselineKey names the previous upload a new one is compared with: the
// last upload of the same repository, category and ref.
func BaselineKey(m Metadata) string {
	h := sha256.Sum256([]byte(m.Repository + "\x00" + m.Category + "\x00" + m.Ref))
	return hex.EncodeToString(h[:16])
}
