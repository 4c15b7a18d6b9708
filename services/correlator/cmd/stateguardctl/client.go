package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// apiError is an answer other than 2xx from an API, with the RFC 9457
// problem it carried.
type apiError struct {
	method, url string
	status      int
	title       string
	detail      string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.method, e.url, e.status, http.StatusText(e.status))
	if e.detail != "" {
		msg += ": " + e.detail
	} else if e.title != "" && e.title != http.StatusText(e.status) {
		msg += ": " + e.title
	}
	return msg
}

// code is the exit code of an API answer.
func (e *apiError) code() int {
	switch e.status {
	case http.StatusNotFound:
		return exitNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return exitDenied
	case http.StatusBadRequest:
		return exitUsage
	}
	return exitError
}

// call sends one request to base+path with the bearer token and decodes a
// 2xx JSON answer into into (when not nil). Other answers are an
// apiError (wrapped with its exit code).
func (o *options) call(ctx context.Context, method, base, path string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return usageErrorf("%s: %v", u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if o.token != "" {
		req.Header.Set("Authorization", "Bearer "+o.token)
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
			Error  string `json:"error"` // older servers
		}
		_ = json.Unmarshal(b, &p)
		e := &apiError{method: method, url: u, status: resp.StatusCode, title: p.Title, detail: or(p.Detail, p.Error)}
		return &codedError{code: e.code(), err: e}
	}
	if into == nil {
		return nil
	}
	if raw, ok := into.(*[]byte); ok { // the answer as it is (a report in Markdown or HTML)
		*raw = b
		return nil
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, u, err)
	}
	return nil
}

// get reads path from the correlator's API into into.
func (o *options) get(ctx context.Context, path string, into any) error {
	return o.call(ctx, http.MethodGet, o.server, path, nil, into)
}

// post sends body to path of the correlator's API.
func (o *options) post(ctx context.Context, path string, body, into any) error {
	return o.call(ctx, http.MethodPost, o.server, path, body, into)
}
