package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// intro explains the report to a reader who never saw stateguard.
const intro = `stateguard keeps stateful applications restorable to a state known to be safe. It snapshots their volumes,
learns from the security scans (SARIF) which versions of the code are vulnerable, and keeps the newest snapshot
that no vulnerable version ever wrote to — the **known-good** restore point — safe from deletion. A **restore
test** restores a snapshot into a scratch volume and checks it. An **incident** opens when a vulnerable version
wrote to an application's data, and closes when the data was restored from a clean snapshot or an operator
resolved it. Certificates are TLS certificates the application's workloads mount; a **rotation** replaces one, and
is **verified** when the certificate served afterwards was checked to be the new one.`

// Markdown writes the report as Markdown.
func Markdown(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Review-cycle report, %s to %s\n\n", day(r.Since), day(r.Until))
	if r.Namespace != "" {
		fmt.Fprintf(&b, "Namespace `%s`. ", r.Namespace)
	}
	fmt.Fprintf(&b, "%d application(s).\n\n%s\n\n## Look at first\n\n", len(r.Apps), intro)
	if len(r.Attention) == 0 {
		b.WriteString("Nothing: every application has an encrypted (or unknown) known-good, no failed restore test, no open incident, no certificate close to expiry.\n")
	}
	for _, s := range r.Attention {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	b.WriteString("\n## Applications\n\n| application | snapshots taken / failed / missed | restore tests passed / failed | incidents opened / closed | certificates expiring ≤ 30 d | rotations (verified) |\n|---|---|---|---|---|---|\n")
	for _, a := range r.Apps {
		opened, closed := incidentCounts(a)
		fmt.Fprintf(&b, "| %s/%s | %d / %d / %d | %d / %d | %d / %d | %d | %d (%d) |\n", a.Namespace, a.App, a.SnapshotsTaken, a.SnapshotsFailed,
			a.SnapshotsMissed, a.RestoreTestsPass, a.RestoreTestsFail, opened, closed, len(a.Expiring), len(a.Rotations), verified(a))
	}
	for _, a := range r.Apps {
		appMarkdown(&b, a)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func appMarkdown(b *strings.Builder, a App) {
	fmt.Fprintf(b, "\n### %s/%s\n\n**Known-good restore points** (the newest per volume, at the end of the period):\n\n", a.Namespace, a.App)
	for _, k := range a.KnownGood {
		if k.Snapshot == "" {
			fmt.Fprintf(b, "- PVC `%s`: **none**\n", k.PVC)
			continue
		}
		fmt.Fprintf(b, "- PVC `%s`: `%s`, %s old, encryption at rest: **%s**%s\n", k.PVC, k.Snapshot, age(k.Age), k.Encryption, evidence(k.Evidence))
	}
	if len(a.Incidents) > 0 {
		b.WriteString("\n**Incidents:**\n\n")
		for _, i := range a.Incidents {
			if i.Closed == nil {
				fmt.Fprintf(b, "- `%s` opened %s, **still open**\n", i.ID, stamp(i.Opened))
				continue
			}
			fmt.Fprintf(b, "- `%s` opened %s, closed %s after %s: %s\n", i.ID, stamp(i.Opened), stamp(*i.Closed), age(i.ToClose), i.Reason)
		}
	}
	if len(a.Expiring) > 0 || len(a.Rotations) > 0 {
		b.WriteString("\n**Certificates:**\n\n")
		for _, e := range a.Expiring {
			if e.DaysLeft < 0 {
				fmt.Fprintf(b, "- `%s` **expired** %s and was not reported rotated\n", e.Secret, day(e.NotAfter))
				continue
			}
			fmt.Fprintf(b, "- `%s` expires %s (%.0f days after the period)\n", e.Secret, day(e.NotAfter), e.DaysLeft)
		}
		for _, r := range a.Rotations {
			fmt.Fprintf(b, "- `%s` rotated %s, %s: %s\n", r.Secret, stamp(r.At), verifiedWord(r.Verified), r.Detail)
		}
	}
	if len(a.Uploads) > 0 {
		b.WriteString("\n**Findings by upload** (oldest first; counted as uploaded, SARIF suppressions subtracted, operators' dismissals listed below):\n\n| uploaded | version | critical | high | medium | low |\n|---|---|---|---|---|---|\n")
		for _, u := range a.Uploads {
			fmt.Fprintf(b, "| %s | %s | %d | %d | %d | %d |\n", stamp(u.At), u.Version, u.Open.Critical, u.Open.High, u.Open.Medium, u.Open.Low)
		}
		fmt.Fprintf(b, "\nTrend: %s.\n", trend(a.Uploads))
	}
	if len(a.Dismissed) > 0 {
		b.WriteString("\n**Findings dismissed by operators:**\n\n")
		for _, d := range a.Dismissed {
			fmt.Fprintf(b, "- %s: rule `%s`%s dismissed by **%s**: %s\n", stamp(d.At), d.RuleID, fingerprint(d.Fingerprint), d.Actor, d.Reason)
		}
	}
}

func incidentCounts(a App) (opened, closed int) {
	for _, i := range a.Incidents {
		opened++
		if i.Closed != nil {
			closed++
		}
	}
	return opened, closed
}

func verified(a App) int {
	n := 0
	for _, r := range a.Rotations {
		n += count(r.Verified)
	}
	return n
}

func verifiedWord(v bool) string {
	if v {
		return "verified"
	}
	return "**not verified**"
}

func fingerprint(f string) string {
	if f == "" {
		return " (every finding of the rule)"
	}
	return " (fingerprint `" + f + "`)"
}

func evidence(ev []string) string {
	if len(ev) == 0 {
		return ""
	}
	return " (" + strings.Join(ev, "; ") + ")"
}

// trend compares the open critical and high findings of the first and the
// last upload of the period.
func trend(us []Upload) string {
	first, last := us[0].Open, us[len(us)-1].Open
	f, l := first.Critical+first.High, last.Critical+last.High
	switch {
	case len(us) == 1:
		return fmt.Sprintf("one upload, %d critical or high", l)
	case l < f:
		return fmt.Sprintf("better: critical and high findings went from %d to %d", f, l)
	case l > f:
		return fmt.Sprintf("worse: critical and high findings went from %d to %d", f, l)
	}
	return fmt.Sprintf("unchanged: %d critical or high", l)
}

func day(t time.Time) string   { return t.UTC().Format("2006-01-02") }
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%.1f hours", d.Hours())
	}
	return d.Round(time.Second).String()
}

// HTML writes the report as one HTML page with SVG charts drawn here.
func HTML(w io.Writer, r Report) error {
	data := struct {
		Report
		Intro    template.HTML
		Overview template.HTML
		Charts   map[string]template.HTML
	}{Report: r, Intro: template.HTML(strings.ReplaceAll(strings.ReplaceAll(template.HTMLEscapeString(intro), "**", ""), "\n", " ")),
		Overview: snapshotsChart(r.Apps), Charts: map[string]template.HTML{}}
	for _, a := range r.Apps {
		data.Charts[a.Namespace+"/"+a.App] = findingsChart(a.Uploads)
	}
	return page.Execute(w, data)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"day": day, "stamp": stamp, "age": age, "join": strings.Join, "verifiedWord": func(v bool) string {
		if v {
			return "verified"
		}
		return "not verified"
	},
	"incidents": func(a App) string { o, c := incidentCounts(a); return fmt.Sprintf("%d / %d", o, c) },
	"verified":  verified, "trend": trend,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Review-cycle report {{day .Since}} to {{day .Until}}</title>
<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}.warn{color:#a40000;font-weight:bold}</style></head>
<body><h1>Review-cycle report, {{day .Since}} to {{day .Until}}</h1>
<p>{{if .Namespace}}Namespace <code>{{.Namespace}}</code>. {{end}}{{len .Apps}} application(s).</p>
<p>{{.Intro}}</p>
<h2>Look at first</h2>
{{if .Attention}}<ul>{{range .Attention}}<li class="warn">{{.}}</li>{{end}}</ul>{{else}}<p>Nothing.</p>{{end}}
<h2>Applications</h2>
<figure>{{.Overview}}<figcaption>Snapshots taken (green), failed (red) and missed (grey) per application in the period.</figcaption></figure>
<table><thead><tr><th scope="col">application</th><th scope="col">snapshots taken / failed / missed</th><th scope="col">restore tests passed / failed</th><th scope="col">incidents opened / closed</th><th scope="col">certificates expiring ≤ 30 d</th><th scope="col">rotations (verified)</th></tr></thead><tbody>
{{range .Apps}}<tr><td>{{.Namespace}}/{{.App}}</td><td>{{.SnapshotsTaken}} / {{.SnapshotsFailed}} / {{.SnapshotsMissed}}</td><td>{{.RestoreTestsPass}} / {{.RestoreTestsFail}}</td><td>{{incidents .}}</td><td>{{len .Expiring}}</td><td>{{len .Rotations}} ({{verified .}})</td></tr>
{{end}}</tbody></table>
{{range .Apps}}{{$key := printf "%s/%s" .Namespace .App}}
<h3>{{.Namespace}}/{{.App}}</h3>
<h4>Known-good restore points</h4><ul>{{range .KnownGood}}{{if .Snapshot}}<li>PVC <code>{{.PVC}}</code>: <code>{{.Snapshot}}</code>, {{age .Age}} old, encryption at rest: <strong{{if eq .Encryption "unencrypted"}} class="warn"{{end}}>{{.Encryption}}</strong>{{if .Evidence}} ({{join .Evidence "; "}}){{end}}</li>{{else}}<li class="warn">PVC <code>{{.PVC}}</code>: none</li>{{end}}{{end}}</ul>
{{if .Incidents}}<h4>Incidents</h4><ul>{{range .Incidents}}<li><code>{{.ID}}</code> opened {{stamp .Opened}}{{if .Closed}}, closed {{stamp .Closed}} after {{age .ToClose}}: {{.Reason}}{{else}}, <span class="warn">still open</span>{{end}}</li>{{end}}</ul>{{end}}
{{if or .Expiring .Rotations}}<h4>Certificates</h4><ul>{{range .Expiring}}<li><code>{{.Secret}}</code> expires {{day .NotAfter}}</li>{{end}}{{range .Rotations}}<li><code>{{.Secret}}</code> rotated {{stamp .At}}, {{verifiedWord .Verified}}: {{.Detail}}</li>{{end}}</ul>{{end}}
{{if .Uploads}}<h4>Findings by upload</h4><figure>{{index $.Charts $key}}<figcaption>Open findings per upload, oldest first: critical (dark red), high (red), medium (orange), low (yellow). {{trend .Uploads}}.</figcaption></figure>{{end}}
{{if .Dismissed}}<h4>Findings dismissed by operators</h4><ul>{{range .Dismissed}}<li>{{stamp .At}}: rule <code>{{.RuleID}}</code>{{if .Fingerprint}} (fingerprint <code>{{.Fingerprint}}</code>){{end}} dismissed by <strong>{{.Actor}}</strong>: {{.Reason}}</li>{{end}}</ul>{{end}}
{{end}}
</body></html>
`))
