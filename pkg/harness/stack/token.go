package stack

import (
	"crypto/rand"
	"encoding/hex"
)

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "sg_" + hex.EncodeToString(b), nil
}
