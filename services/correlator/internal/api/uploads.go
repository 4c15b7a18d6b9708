package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// UploadJoins reads the join records of uploads that named no application
// (the engine implements it; a Store without it answers 404).
type UploadJoins interface {
	UploadJoin(ctx context.Context, id string) (model.UploadJoin, bool, error)
}

// UploadJoinLister lists the join records (the engine implements it; a
// Store without it answers 404).
type UploadJoinLister interface {
	UploadJoins(ctx context.Context, state, after string, limit int) (recs []model.UploadJoin, more bool, err error)
}

// Pages of GET /v1/uploads.
const (
	defaultUploadsLimit = 100
	maxUploadsLimit     = 1000
)

// UploadJoinStatus is GET /v1/uploads/{id}: how the correlator joined an
// upload that named no application (GitHub's uploaders name a repository
// and a commit only).
type UploadJoinStatus struct {
	UploadID   string `json:"upload_id"`
	Repository string `json:"repository"`
	Category   string `json:"category,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	// State is "joined" or "not joined"; Reason says why not.
	State    string             `json:"state"`
	Reason   string             `json:"reason,omitempty"`
	JoinedTo []model.RepoTarget `json:"joined_to,omitempty"`
	// ReceivedAt is when sastingest received the upload.
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

func joinStatus(rec model.UploadJoin) UploadJoinStatus {
	st := UploadJoinStatus{UploadID: rec.UploadID, Repository: rec.Keys.Repository, Category: rec.Keys.Category,
		Namespace: rec.Keys.Namespace, State: rec.State, Reason: rec.Reason, JoinedTo: rec.Targets}
	if rec.Upload != nil {
		st.ReceivedAt = rec.Upload.ReceivedAt
	}
	return st
}

// uploadJoins is GET /v1/uploads[?joined=true|false][&after=<upload id>][&limit=n]:
// the join records of uploads that named no application, in upload id
// order, a page at a time (limit, default 100, at most 1000). When more
// follow, the Link header names the next page (rel="next": the same query
// after the page's last id).
func (s *Server) uploadJoins(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, after, limit, err := uploadsQuery(q)
	if err != nil {
		invalid(w, r, err)
		return
	}
	lister, ok := s.store.(UploadJoinLister)
	if !ok {
		notFound(w, r, "this correlator keeps no join records")
		return
	}
	recs, more, err := lister.UploadJoins(r.Context(), state, after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]UploadJoinStatus, 0, len(recs))
	for _, rec := range recs {
		out = append(out, joinStatus(rec))
	}
	if more && len(recs) > 0 {
		q.Set("after", recs[len(recs)-1].UploadID)
		w.Header().Set("Link", fmt.Sprintf(`</v1/uploads?%s>; rel="next"`, q.Encode()))
	}
	writeJSON(w, http.StatusOK, out)
}

// uploadsQuery reads GET /v1/uploads' parameters: joined (true, false or
// absent), after (an upload id) and limit (1 to maxUploadsLimit).
func uploadsQuery(q url.Values) (state, after string, limit int, err error) {
	switch q.Get("joined") {
	case "":
	case "true":
		state = model.JoinJoined
	case "false":
		state = model.JoinNotJoined
	default:
		return "", "", 0, fmt.Errorf("joined is true or false")
	}
	after = q.Get("after")
	if after != "" && !uploadID(after) {
		return "", "", 0, errors.New("after is an upload id: 40 lowercase hexadecimal digits")
	}
	limit = defaultUploadsLimit
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > maxUploadsLimit {
			return "", "", 0, fmt.Errorf("limit is a whole number from 1 to %d", maxUploadsLimit)
		}
	}
	return state, after, limit, nil
}

func (s *Server) uploadJoin(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("upload")
	if !uploadID(id) {
		writeProblem(w, r, service.Problem{Type: service.ProblemBase + "invalid-parameter", Title: "Invalid request parameter",
			Status: http.StatusBadRequest, Detail: "an upload id is 40 lowercase hexadecimal digits"})
		return
	}
	joins, ok := s.store.(UploadJoins)
	if !ok {
		notFound(w, r, "this correlator keeps no join records")
		return
	}
	rec, found, err := joins.UploadJoin(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found {
		notFound(w, r, "no join record for this upload: it named its namespace and app (see sastingest's status), or the correlator has not seen it yet")
		return
	}
	writeJSON(w, http.StatusOK, joinStatus(rec))
}

// uploadID reports whether id is an upload id as sastingest makes them: 40
// lowercase hex digits.
func uploadID(id string) bool {
	if len(id) != 40 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if (id[i] < '0' || id[i] > '9') && (id[i] < 'a' || id[i] > 'f') {
			return false
		}
	}
	return true
}
