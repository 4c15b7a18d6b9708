package correlator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Scope is what a token may do at the correlator.
type Scope int

const (
	// ScopeNone: the correlator does not know the token.
	ScopeNone Scope = iota
	// ScopeRead may read every GET route.
	ScopeRead
	// ScopeOperator may also write (restore, resolve, dismiss).
	ScopeOperator
)

func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeOperator:
		return "operator"
	}
	return "none"
}

// OnBehalfOfHeader names the user a delegate token acts for; the correlator
// records that user as the actor of a write.
const OnBehalfOfHeader = "Stateguard-On-Behalf-Of"

type onBehalfOfKey struct{}

// OnBehalfOf returns ctx whose calls to the correlator act on behalf of
// user (the token must be a delegate token).
func OnBehalfOf(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, onBehalfOfKey{}, user)
}

// Client calls the correlator's API.
type Client struct {
	base string
	http *http.Client
}

// New returns a client of the API at base (http://host:port).
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// Error is an answer of the API other than 2xx: its status and the
// problem's detail (RFC 9457).
type Error struct {
	Status int
	Title  string
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("correlator: %d %s: %s", e.Status, e.Title, e.Detail)
}

// StatusOf returns the HTTP status of an *Error in err, 0 otherwise.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func (c *Client) do(ctx context.Context, token, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if user, ok := ctx.Value(onBehalfOfKey{}).(string); ok {
		req.Header.Set(OnBehalfOfHeader, user)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("correlator %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		p := struct{ Title, Detail string }{}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		return resp.StatusCode, &Error{Status: resp.StatusCode, Title: p.Title, Detail: p.Detail}
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("correlator %s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Scope asks the correlator what token may do, without changing anything:
// a write with an empty body is refused before any effect — 401 for an
// unknown token, 403 for a read token, 400 (the body is invalid) for an
// operator token.
func (c *Client) Scope(ctx context.Context, token string) (Scope, error) {
	if token == "" {
		return ScopeNone, nil
	}
	code, err := c.do(ctx, token, http.MethodPost, "/v1/findings/dismiss", struct{}{}, nil)
	switch code {
	case http.StatusUnauthorized:
		return ScopeNone, nil
	case http.StatusForbidden:
		return ScopeRead, nil
	case http.StatusBadRequest:
		return ScopeOperator, nil
	}
	if err == nil {
		err = fmt.Errorf("correlator answered %d to an empty dismissal", code)
	}
	return ScopeNone, err
}

// Apps is GET /v1/apps.
func (c *Client) Apps(ctx context.Context, token string) ([]AppSummary, error) {
	var out []AppSummary
	_, err := c.do(ctx, token, http.MethodGet, "/v1/apps", nil, &out)
	return out, err
}

// Certificates is GET /v1/certificates[?namespace=ns]: every certificate
// the correlator knows.
func (c *Client) Certificates(ctx context.Context, token, ns string) ([]NamespacedCertificate, error) {
	path := "/v1/certificates"
	if ns != "" {
		path += "?namespace=" + url.QueryEscape(ns)
	}
	var out []NamespacedCertificate
	_, err := c.do(ctx, token, http.MethodGet, path, nil, &out)
	return out, err
}

// UploadsNotJoined is GET /v1/uploads?joined=false: at most limit uploads
// that named no application and are not joined, in upload id order after
// the id after ("" from the first).
func (c *Client) UploadsNotJoined(ctx context.Context, token, after string, limit int) ([]UploadJoin, error) {
	q := url.Values{"joined": {"false"}, "limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var out []UploadJoin
	_, err := c.do(ctx, token, http.MethodGet, "/v1/uploads?"+q.Encode(), nil, &out)
	return out, err
}

// App is GET /v1/apps/{namespace}/{app}.
func (c *Client) App(ctx context.Context, token, ns, app string) (Posture, error) {
	var out Posture
	_, err := c.do(ctx, token, http.MethodGet, "/v1/apps/"+url.PathEscape(ns)+"/"+url.PathEscape(app), nil, &out)
	return out, err
}

// RestorePlans is GET /v1/apps/{namespace}/{app}/restore-plan.
func (c *Client) RestorePlans(ctx context.Context, token, ns, app string) ([]RestorePlan, error) {
	var out []RestorePlan
	_, err := c.do(ctx, token, http.MethodGet, "/v1/apps/"+url.PathEscape(ns)+"/"+url.PathEscape(app)+"/restore-plan", nil, &out)
	return out, err
}

// Incidents is GET /v1/incidents.
func (c *Client) Incidents(ctx context.Context, token string) ([]Incident, error) {
	var out []Incident
	_, err := c.do(ctx, token, http.MethodGet, "/v1/incidents", nil, &out)
	return out, err
}

// Incident is GET /v1/incidents/{id}.
func (c *Client) Incident(ctx context.Context, token, id string) (Incident, error) {
	var out Incident
	_, err := c.do(ctx, token, http.MethodGet, "/v1/incidents/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Why is GET /v1/snapshots/{namespace}/{name}/why.
func (c *Client) Why(ctx context.Context, token, ns, name string) (Why, error) {
	var out Why
	_, err := c.do(ctx, token, http.MethodGet, "/v1/snapshots/"+url.PathEscape(ns)+"/"+url.PathEscape(name)+"/why", nil, &out)
	return out, err
}

// Resolve is POST /v1/incidents/{id}/resolve.
func (c *Client) Resolve(ctx context.Context, token, id, reason string) error {
	_, err := c.do(ctx, token, http.MethodPost, "/v1/incidents/"+url.PathEscape(id)+"/resolve", map[string]string{"reason": reason}, nil)
	return err
}

// Dismiss is POST /v1/findings/dismiss.
func (c *Client) Dismiss(ctx context.Context, token string, req DismissRequest) error {
	_, err := c.do(ctx, token, http.MethodPost, "/v1/findings/dismiss", req, nil)
	return err
}

// Restore is POST /v1/restores: the correlator publishes restore.requested
// and the snapshotter restores.
func (c *Client) Restore(ctx context.Context, token string, req RestoreRequest) (RestoreAccepted, error) {
	var out RestoreAccepted
	_, err := c.do(ctx, token, http.MethodPost, "/v1/restores", req, &out)
	return out, err
}
