package events

import (
	"crypto/sha256"
	"encoding/hex"
)

// RestoreName is the name of the Restore a restore.requested event with
// requestID creates: the correlator answers it to the operator, the
// snapshotter creates it, so a retried request names the same Restore.
func RestoreName(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return "restore-" + hex.EncodeToString(sum[:])[:16]
}
