package ingest

import (
	"fmt"

	"github.com/stateguard/stateguard/pkg/events"
)

// Join states of an upload's status.
const (
	JoinJoined    = "joined"
	JoinNotJoined = "not joined"
)

// Join is the "join" of an upload's status: what sastingest knows of the
// application the upload belongs to.
type Join struct {
	State     string `json:"state"`
	Namespace string `json:"namespace,omitempty"`
	App       string `json:"app,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// JoinOf is the rule for an upload's join as sastingest sees it: joined
// when the uploader named the namespace and app; otherwise not joined, for
// the correlator to join by repository (GitHub's uploaders send a
// repository and a commit only). The correlator's GET /v1/uploads/{id}
// (stateguardctl upload get) says whether it has since.
func JoinOf(s *events.SARIFUploaded) *Join {
	if s == nil {
		return nil
	}
	if s.Namespace != "" && s.App != "" {
		return &Join{State: JoinJoined, Namespace: s.Namespace, App: s.App}
	}
	return &Join{State: JoinNotJoined, Namespace: s.Namespace, Reason: fmt.Sprintf("the upload names no application: the correlator joins it by repository %s "+
		"(the workloads annotated %s or %s, or its rules file's repositories) and its commit; "+
		"GET /v1/uploads/{id} on the correlator or stateguardctl upload get says whether it has", s.Repository, events.AnnotationRepository, events.AnnotationImageSource)}
}
