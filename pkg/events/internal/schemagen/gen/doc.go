// Command gen writes pkg/events/schemas/*.json and the README's event table.
// Run it through `go generate` in pkg/events (or `make generate`).
package main
