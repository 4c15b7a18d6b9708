package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go"

	"github.com/stateguard/stateguard/pkg/events"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts Debian's chromium headless with a fresh profile and
// returns a tab's context; it fails naming `make tools` without it.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: run `make tools` (it installs Debian's chromium package)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	// The first call starts the browser, which lives as long as that
	// call's context: no timeout on it (chromedp.Run's rule).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// axeSource is axe-core, installed by `make tools` (bin/axe.min.js) or
// named by STATEGUARD_AXE.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("STATEGUARD_AXE")
	if path == "" {
		path = filepath.Join("..", "..", "bin", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("axe-core not found (%v): run `make tools` (it installs axe-core from npm)", err)
	}
	return string(b)
}

// do runs actions with a generous deadline.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, with a generous deadline.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// checkAxe runs axe-core inside the page and fails on any serious or
// critical violation.
func checkAxe(t *testing.T, ctx context.Context, axe, page string) {
	t.Helper()
	get(t, ctx, "inject axe-core on "+page, chromedp.Evaluate[bool](axe+"\n;true"))
	violations := get(t, ctx, "run axe-core on "+page, chromedp.Evaluate[[]string](`axe.run(document).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.impact + " " + v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join("; ")))`, chromedp.EvalAwaitPromise))
	for _, v := range violations {
		t.Errorf("axe-core on %s: %s", page, v)
	}
}

// screenshotDir is where the tests write screenshots: out of git.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "stateguard-console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func login(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	do(t, ctx, "log in",
		chromedp.Navigate(base+"/fleet"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`form.login button`)),
		chromedp.WaitVisible(chromedp.CSS(`table.fleet`)))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(get(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return get(t, ctx, "evaluate "+js, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// postFromPage posts a form from inside the page (with its cookies) and
// returns the status: what a forged or hand-made request gets.
func postFromPage(t *testing.T, ctx context.Context, path string, form map[string]string) int {
	t.Helper()
	b, _ := json.Marshal(form)
	return eval[int](t, ctx, fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams(%s), credentials: "same-origin"}).then(r => r.status)`, path, b))
}

// tabTo presses Tab until the element with id has the focus.
func tabTo(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	for range 80 {
		do(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
		if eval[string](t, ctx, `document.activeElement ? document.activeElement.id : ""`) == id {
			return
		}
	}
	t.Fatalf("Tab never reached #%s", id)
}

// TestConsoleInABrowser drives headless chromium through the console of a
// real JetStream, the real correlator and the real snapshotter on the
// package's cluster: a read token sees no action button and its POST
// answers 403, the pages read without JavaScript; the operator logs in,
// finds the app at risk and the app in incident on the fleet page, opens
// the timeline and the incident, and presses Restore with the keyboard; a
// wrong CSRF token answers 403; the incident page then follows the
// Restore's phases live to Completed — the claim holds the restore point's
// data again — and shows the incident closed by the restore, and the fleet
// page shows the app ok; every page passes axe-core.
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test needs chromium, axe-core and the cluster's binaries (make tools): `make test` runs it, `make unit` (-short) does not")
	}
	axe := axeSource(t)
	st, cs := startStack(t)
	ctx := browser(t)
	base := st.consoleURL

	// A read token, while the incident is open: no button, and the POST
	// answers 403; the pages read without JavaScript.
	login(t, ctx, base, readToken)
	incidentPath := openIncident(t, ctx, base)
	incidentID := strings.TrimPrefix(incidentPath, "/incidents/")
	if n := eval[int](t, ctx, `document.querySelectorAll("form[action$='/restore'], form[action$='/resolve'], form[action$='/dismiss']").length`); n != 0 {
		t.Errorf("a read token sees %d action forms, want none", n)
	}
	csrf := eval[string](t, ctx, `document.querySelector("header form input[name=csrf]").value`)
	if code := postFromPage(t, ctx, incidentPath+"/restore", map[string]string{"csrf": csrf, "pvc": "data-db", "snapshot": "db-1", "confirm": "yes"}); code != http.StatusForbidden {
		t.Errorf("a read token's restore POST: %d, want 403", code)
	}
	checkAxe(t, ctx, axe, "incident (read token)")
	readWithoutJavaScript(t, base, incidentPath)
	do(t, ctx, "log out", chromedp.Click(chromedp.CSS(`header form button`)), chromedp.WaitVisible(chromedp.CSS(`#token`)))

	login(t, ctx, base, operatorToken)
	if got := text(t, ctx, `tr[data-app="shop/db"] .posture`); got != "incident" {
		t.Errorf("shop/db posture %q, want incident", got)
	}
	if got := text(t, ctx, `tr[data-app="shop/web"] .posture`); got != "at risk" {
		t.Errorf("shop/web posture %q, want at risk", got)
	}
	if got := text(t, ctx, `tr[data-app="shop/web"] .reasons`); !strings.Contains(got, "unscanned version runs") {
		t.Errorf("shop/web reasons %q: want the unscanned version named", got)
	}
	checkAxe(t, ctx, axe, "fleet")
	screenshot(t, ctx, "fleet")

	do(t, ctx, "filter the fleet on at risk",
		chromedp.Navigate(base+"/fleet?posture=at+risk"), chromedp.WaitVisible(chromedp.CSS(`table.fleet`)))
	if n := eval[int](t, ctx, `document.querySelectorAll("table.fleet tbody tr").length`); n != 1 {
		t.Errorf("%d rows at risk, want 1 (shop/web)", n)
	}

	do(t, ctx, "open the timeline of shop/db",
		chromedp.Navigate(base+"/fleet"), chromedp.WaitVisible(chromedp.CSS(`table.fleet`)),
		chromedp.Click(chromedp.CSS(`tr[data-app="shop/db"] th a`)),
		chromedp.WaitVisible(chromedp.CSS(`figure.timeline svg`)))
	clean := eval[int](t, ctx, `document.querySelectorAll("svg circle.mark.clean").length`)
	tainted := eval[int](t, ctx, `document.querySelectorAll("svg circle.mark.tainted").length`)
	pins := eval[int](t, ctx, `document.querySelectorAll("svg circle.pin").length`)
	spans := eval[int](t, ctx, `document.querySelectorAll("svg rect.incident-span.open").length`)
	if clean < 1 || tainted < 1 || pins < 1 || spans != 1 {
		t.Errorf("timeline: %d clean, %d tainted snapshots, %d pins, %d open incident spans; want ≥1, ≥1, ≥1, 1", clean, tainted, pins, spans)
	}
	checkAxe(t, ctx, axe, "application")
	screenshot(t, ctx, "application")

	do(t, ctx, "open the why of db-1",
		chromedp.Click(chromedp.CSS(`svg a[href="/snapshots/shop/db-1"]`)), chromedp.WaitNotPresent(chromedp.CSS(`figure.timeline`)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if got := text(t, ctx, `main`); !strings.Contains(got, "clean: every version it ran was scanned clean") {
		t.Errorf("why of db-1 does not say it is clean:\n%s", got)
	}
	checkAxe(t, ctx, axe, "why")

	if got := openIncident(t, ctx, base); got != incidentPath {
		t.Fatalf("the operator's incident %s, the reader's %s", got, incidentPath)
	}
	if got := text(t, ctx, `main`); !strings.Contains(got, "G402") || !strings.Contains(got, "db-1") {
		t.Errorf("incident page names neither the rule G402 nor the restore point db-1:\n%s", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("textarea.plan").length`); n != 1 {
		t.Errorf("%d restore plans on the page, want 1", n)
	}
	checkAxe(t, ctx, axe, "incident")
	screenshot(t, ctx, "incident")

	// A wrong CSRF token: 403, and nothing reaches the correlator.
	if code := postFromPage(t, ctx, incidentPath+"/resolve", map[string]string{"csrf": "not-the-token", "reason": "forged", "confirm": "yes"}); code != http.StatusForbidden {
		t.Errorf("resolve with a wrong CSRF token: %d, want 403", code)
	}
	if code := postFromPage(t, ctx, incidentPath+"/resolve", map[string]string{"reason": "forged", "confirm": "yes"}); code != http.StatusForbidden {
		t.Errorf("resolve without a CSRF token: %d, want 403", code)
	}

	// Restore, with the keyboard only: Tab to the button, Enter, then the
	// confirmation step, Tab to Confirm, Enter.
	restores, err := st.client.Conn().SubscribeSync(events.SubjectPrefix + "restore.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = restores.Unsubscribe() }()
	eval[bool](t, ctx, `document.activeElement && document.activeElement.blur(); window.focus(); true`)
	tabTo(t, ctx, "restore-data-db")
	do(t, ctx, "press Enter on Restore", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`#confirm`)))
	if got := text(t, ctx, `p.warning`); !strings.Contains(got, "data-db") || !strings.Contains(got, "db-1") {
		t.Errorf("the confirmation does not name the PVC and the snapshot: %q", got)
	}
	checkAxe(t, ctx, axe, "confirmation")
	tabTo(t, ctx, "confirm")
	do(t, ctx, "press Enter on Confirm", chromedp.KeyEvent(kb.Enter), chromedp.WaitNotPresent(chromedp.CSS(`#confirm`)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	h1 := text(t, ctx, `h1`)
	if h1 != "Restore requested" {
		t.Fatalf("after Confirm: %q, want Restore requested", h1)
	}
	checkRestoreRequested(t, restores, incidentID)

	// Back on the incident page, its phases arrive live (server-sent
	// events, no reload) until the Restore Completed and the incident
	// closed.
	do(t, ctx, "go back to the incident", chromedp.Click(chromedp.CSS(`main a[href="`+incidentPath+`"]`)), chromedp.WaitVisible(chromedp.CSS(`#restore-data-db, ol.steps`)))
	watchRestore(t, ctx, axe)
	if got, want := mustData(t, cs), sha(dataV1); got != want {
		t.Errorf("after the restore data-db's %s has sha256 %s, want db-1's (v1's data) %s", dataFile, got, want)
	}
	do(t, ctx, "open the fleet after the restore", chromedp.Navigate(base+"/fleet"), chromedp.WaitVisible(chromedp.CSS(`table.fleet`)))
	waitFor(t, "the fleet page to show shop/db ok after the restore", 90*time.Second, func() error {
		do(t, ctx, "reload the fleet", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`table.fleet`)))
		if got := text(t, ctx, `tr[data-app="shop/db"] .posture`); got != "ok" {
			return fmt.Errorf("shop/db posture %q (%s)", got, text(t, ctx, `tr[data-app="shop/db"] .reasons`))
		}
		return nil
	})
	screenshot(t, ctx, "fleet-after-restore")

	// Other pages pass axe-core too.
	for _, p := range []string{"certificates", "pipeline"} {
		do(t, ctx, "open "+p, chromedp.Navigate(base+"/"+p), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		checkAxe(t, ctx, axe, p)
		screenshot(t, ctx, p)
	}
	if got := text(t, ctx, `main`); !strings.Contains(got, "DECISION") || !strings.Contains(got, "correlator-sarif") {
		t.Errorf("pipeline page shows neither the DECISION stream nor the correlator's consumer:\n%s", got)
	}
	if got := text(t, ctx, `table.uploads tr[data-upload="`+orphanUpload+`"] .reason`); !strings.Contains(got, "no application runs repository acme/orphan") {
		t.Errorf("pipeline page: the upload not joined %s shows the reason %q", orphanUpload, got)
	}
	do(t, ctx, "open certificates", chromedp.Navigate(base+"/certificates"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if got := text(t, ctx, `main`); !strings.Contains(got, "db-tls") {
		t.Errorf("certificates page does not list db-tls:\n%s", got)
	}

	// Live: the fleet page follows the streams without a reload. A clean
	// scan of web's version arrives; the correlator derives; the page's
	// row turns ok on its own.
	do(t, ctx, "open the fleet", chromedp.Navigate(base+"/fleet"), chromedp.WaitVisible(chromedp.CSS(`table.fleet`)))
	eval[bool](t, ctx, `window.notReloaded = true; true`)
	if err := st.client.Publish(t.Context(), sceneSARIF("shop", "web", "up-web-w1", "w1", time.Now())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fleet page to show shop/web ok without a reload", 90*time.Second, func() error {
		got := eval[string](t, ctx, `(document.querySelector('tr[data-app="shop/web"] .posture') || {}).textContent || ""`)
		if got != "ok" {
			return fmt.Errorf("shop/web shows %q", got)
		}
		return nil
	})
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Error("the page was reloaded: the update did not come from the live feed")
	}
	if got := text(t, ctx, `#live-status`); !strings.Contains(got, "updated") {
		t.Errorf("live status %q: want it to say the page was updated", got)
	}
}

// openIncident goes from the fleet page to shop/db's timeline and from
// there to its incident, and returns the incident page's path.
func openIncident(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	do(t, ctx, "open the incident",
		chromedp.Navigate(base+"/apps/shop/db"), chromedp.WaitVisible(chromedp.CSS(`figure.timeline`)),
		chromedp.Click(chromedp.CSS(`main a[href^="/incidents/"]`)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	return strings.TrimPrefix(get(t, ctx, "read the incident's address", chromedp.Location()), base)
}

// restorePhases are the Restore's phases in the order the executor enters
// them (Verifying only with a verification Job); the incident page shows
// the operator's request first.
var restorePhases = []string{"Requested", "Pending", "SafetySnapshot", "ScalingDown", "Restoring", "Verifying", "ScalingUp", "Completed"}

// restoreDeadline bounds the wait for the Restore to complete and the
// incident to close (a loaded machine: the executor polls every 2 s).
const restoreDeadline = 4 * time.Minute

// watchRestore records, inside the incident page, every list of phases
// the page shows as the live feed replaces its content, until it shows
// Completed and the incident closed. It fails — at the deadline, naming
// what the page showed — unless the page showed the phases arriving in the
// executor's order without a reload, each of them, and the incident closed
// by the restore.
func watchRestore(t *testing.T, ctx context.Context, axe string) {
	t.Helper()
	eval[bool](t, ctx, `window.notReloaded = true; window.phaseLog = [];
		(function () {
			function record() {
				var phases = Array.from(document.querySelectorAll("ol.steps li[data-phase]")).map(function (li) { return li.dataset.phase; }).filter(Boolean).join(" ");
				var state = (document.querySelector("main h1 + p .posture") || {}).textContent || "";
				var entry = phases + " | " + state;
				if (window.phaseLog[window.phaseLog.length - 1] !== entry) { window.phaseLog.push(entry); }
			}
			record();
			new MutationObserver(record).observe(document.querySelector("main"), {childList: true, subtree: true, characterData: true});
		})(); true`)
	var log []string
	deadline := time.Now().Add(restoreDeadline)
	for {
		log = eval[[]string](t, ctx, `window.phaseLog`)
		last := log[len(log)-1]
		if strings.Contains(last, "Failed") || strings.Contains(last, "RolledBack") {
			t.Fatalf("the restore did not complete; the incident page showed, in turn:\n%s", strings.Join(log, "\n"))
		}
		if strings.HasSuffix(last, "Completed | closed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within %s the incident page did not show the restore Completed and the incident closed (is the snapshotter's executor running?); it showed, in turn:\n%s", restoreDeadline, strings.Join(log, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("the incident page showed, in turn:\n%s", strings.Join(log, "\n"))
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Error("the incident page was reloaded: the phases did not come from the live feed")
	}
	if strings.Contains(log[0], "Completed") || len(log) < 2 {
		t.Errorf("the page did not show the restore under way: %d states, the first %q", len(log), log[0])
	}
	final := strings.Fields(strings.TrimSuffix(log[len(log)-1], " | closed"))
	checkPhaseOrder(t, final)
	main := text(t, ctx, `main`)
	if !strings.Contains(main, "was restored from snapshot db-1") {
		t.Errorf("the closed incident does not say it was closed by the restore from db-1:\n%s", main)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#restore-data-db, #resolve").length`); n != 0 {
		t.Errorf("the closed incident still offers %d actions", n)
	}
	checkAxe(t, ctx, axe, "incident (restored)")
	screenshot(t, ctx, "incident-restored")
}

// checkPhaseOrder fails unless phases are the executor's phases in its
// order, from the request to Completed, none missing but Verifying (the
// request asked for no verification Job).
func checkPhaseOrder(t *testing.T, phases []string) {
	t.Helper()
	var want []string
	for _, p := range restorePhases {
		if p != "Verifying" || slices.Contains(phases, p) {
			want = append(want, p)
		}
	}
	if !slices.Equal(phases, want) {
		t.Errorf("the incident page shows the phases %v, want %v", phases, want)
	}
}

// mustData is the SHA-256 of data-db's data file now.
func mustData(t *testing.T, cs clusterScene) string {
	t.Helper()
	var sum string
	waitFor(t, "data-db's data file", 30*time.Second, func() error {
		var err error
		sum, err = cs.data(t.Context())
		return err
	})
	return sum
}

// checkRestoreRequested waits for the restore.requested event of the
// incident on DECISION.
func checkRestoreRequested(t *testing.T, sub *nats.Subscription, incident string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		ev, err := events.DecodeMsg(m)
		if err != nil || !strings.HasSuffix(ev.Type(), ".restore.requested.v1") {
			continue
		}
		var p struct {
			IncidentID string `json:"incident_id"`
			PVC        string `json:"pvc"`
		}
		if json.Unmarshal(ev.Data(), &p) == nil && p.IncidentID == incident && p.PVC == "data-db" {
			return
		}
	}
	t.Errorf("no restore.requested for incident %s and PVC data-db on DECISION", incident)
}

// readWithoutJavaScript logs in and reads the pages with a plain HTTP
// client, which runs no script: everything is on the server-rendered page.
// It also checks the session cookie's attributes and the CSP header.
func readWithoutJavaScript(t *testing.T, base, incidentPath string) {
	t.Helper()
	c, loginHeader := httpLogin(t, base, readToken)
	cookie := ""
	for _, sc := range loginHeader.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "sg_session=") {
			cookie = sc
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("session cookie %q is Secure on plain HTTP: the browser would never send it back", cookie)
	}
	fleet, h := fetch(t, c, base+"/fleet")
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q: want scripts from the console only, nothing inline", csp)
	}
	for _, want := range []string{`data-app="shop/db"`, `>incident<`, `data-app="shop/web"`, `>at risk<`} {
		if !strings.Contains(fleet, want) {
			t.Errorf("the fleet page without JavaScript lacks %s", want)
		}
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(fleet) || strings.Contains(fleet, " onclick=") {
		t.Error("the fleet page holds inline script")
	}
	inc, _ := fetch(t, c, base+incidentPath)
	if !strings.Contains(inc, "G402") || !strings.Contains(inc, "kind: PersistentVolumeClaim") {
		t.Errorf("the incident page without JavaScript lacks the reason or the restore plan")
	}
}
