package sarif

import "github.com/stateguard/stateguard/pkg/events"

func countSeverity(c *events.SeverityCounts, s string) {
	switch s {
	case SeverityCritical:
		c.Critical++
	case SeverityHigh:
		c.High++
	case SeverityMedium:
		c.Medium++
	case SeverityLow:
		c.Low++
	default:
		c.None++
	}
}

func countLevel(c *events.LevelCounts, l string) {
	switch l {
	case LevelError:
		c.Error++
	case LevelWarning:
		c.Warning++
	case LevelNote:
		c.Note++
	default:
		c.None++
	}
}
