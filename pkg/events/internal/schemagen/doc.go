// Package schemagen derives the published artefacts of the event contract
// from the catalogue: one JSON Schema per payload (schemas/) and the event
// table of the README. `go generate` in pkg/events writes them; tests check
// that the committed files match, so they cannot drift from the Go types.
package schemagen
