// Package web serves the console's pages: a login form that exchanges a
// bearer token for a session cookie, the fleet, application, incident,
// snapshot, certificate and pipeline pages rendered on the server from
// html/template with embedded assets, the operator's actions (each behind a
// confirmation step and a CSRF token) forwarded to the correlator, and a
// server-sent events feed that tells open pages to refresh their content.
//
// The product rules the pages show are pure functions named for them:
// PostureOf (ok, at risk, incident), Fleet (filter, sort, page), and
// BuildTimeline (the application's timeline, drawn as SVG).
package web
