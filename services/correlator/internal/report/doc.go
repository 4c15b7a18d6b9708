// Package report is the review-cycle report: for a period and per
// application, what happened to its snapshots (taken, failed, missed), its
// restore tests, its known-good restore point (age, encryption at rest), its
// certificates (expiring within 30 days, rotations and whether the served
// certificate was checked), its incidents (opened, closed, time to close)
// and its findings (by severity across the uploads, and the findings
// operators dismissed, by whom and why).
//
// Build is a pure function of the streams' records (package audit) and the
// correlator's current views; Markdown and HTML render it, the HTML with
// charts drawn as SVG on the server (no script). The correlator computes
// it: it holds the state and reads the streams, for the API's
// GET /v1/report (what stateguardctl report asks) and for the scheduled
// report it stores in the Object Store and announces with report.generated.
package report
