package report

import (
	"fmt"
	"html/template"
	"strings"
)

// bar is one bar of a chart: a label and stacked segments.
type bar struct {
	label    string
	segments []segment
}

type segment struct {
	value int
	color string
	name  string
}

// chart draws stacked bars as an SVG image with a title for screen readers.
func chart(title string, bars []bar) template.HTML {
	const barW, gap, height, labelH = 28, 14, 120, 40
	maxV := 1
	for _, b := range bars {
		total := 0
		for _, s := range b.segments {
			total += s.value
		}
		maxV = max(maxV, total)
	}
	width := len(bars)*(barW+gap) + gap + 30
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="%d" height="%d" viewBox="0 0 %d %d"><title>%s</title>`,
		width, height+labelH, width, height+labelH, template.HTMLEscapeString(title))
	fmt.Fprintf(&s, `<text x="0" y="10" font-size="10">%d</text><line x1="28" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, maxV, height, width, height)
	for i, b := range bars {
		x := 30 + gap + i*(barW+gap)
		y := height
		for _, seg := range b.segments {
			if seg.value == 0 {
				continue
			}
			h := seg.value * (height - 14) / maxV
			y -= h
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d</title></rect>`,
				x, y, barW, h, seg.color, template.HTMLEscapeString(b.label+" "+seg.name), seg.value)
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" font-size="9" transform="rotate(30 %d %d)">%s</text>`,
			x, height+12, x, height+12, template.HTMLEscapeString(shorten(b.label)))
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) //nolint:gosec // every label is escaped above; the rest are numbers
}

func shorten(s string) string {
	if len(s) > 18 {
		return s[:17] + "…"
	}
	return s
}

// snapshotsChart: snapshots taken, failed and missed per application.
func snapshotsChart(apps []App) template.HTML {
	var bars []bar
	for _, a := range apps {
		bars = append(bars, bar{label: a.Namespace + "/" + a.App, segments: []segment{
			{a.SnapshotsTaken, "#2e7d32", "taken"}, {a.SnapshotsFailed, "#c62828", "failed"}, {a.SnapshotsMissed, "#9e9e9e", "missed"},
		}})
	}
	return chart("Snapshots taken, failed and missed per application", bars)
}

// findingsChart: open findings by severity per upload.
func findingsChart(us []Upload) template.HTML {
	var bars []bar
	for _, u := range us {
		bars = append(bars, bar{label: u.Version, segments: []segment{
			{u.Open.Critical, "#7f0000", "critical"}, {u.Open.High, "#d32f2f", "high"}, {u.Open.Medium, "#f57c00", "medium"}, {u.Open.Low, "#fbc02d", "low"},
		}})
	}
	return chart("Open findings by severity per upload", bars)
}
