package api

import (
	"context"
	"net/http"

	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// UploadJoins reads the join records of uploads that named no application
// (the engine implements it; a Store without it answers 404).
type UploadJoins interface {
	UploadJoin(ctx context.Context, id string) (model.UploadJoin, bool, error)
}

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
	writeJSON(w, http.StatusOK, UploadJoinStatus{UploadID: rec.UploadID, Repository: rec.Keys.Repository, Category: rec.Keys.Category,
		Namespace: rec.Keys.Namespace, State: rec.State, Reason: rec.Reason, JoinedTo: rec.Targets})
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
