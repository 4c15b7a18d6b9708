package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/internal/schemagen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	for _, spec := range events.Catalogue {
		b, err := schemagen.Schema(spec)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.Type, err)
		}
		if err := os.WriteFile(filepath.Join("schemas", spec.Schema()), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	readme := filepath.Join("..", "..", "README.md")
	old, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	updated, err := schemagen.ReplaceTable(string(old))
	if err != nil {
		return err
	}
	return os.WriteFile(readme, []byte(updated), 0o644)
}
