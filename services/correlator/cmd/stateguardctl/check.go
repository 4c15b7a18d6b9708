package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
)

// checkResult is one line of `check`.
type checkResult struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok, FAIL or skip
	Detail string `json:"detail"`
}

const (
	checkOK   = "ok"
	checkFail = "FAIL"
	checkSkip = "skip"
)

// errCheckFailed ends `check` with exitError when a line is FAIL.
var errCheckFailed = errors.New("the installation check found failures")

// access is one right a service account must have (or, for
// allowed=false, must not have).
type access struct {
	sa       string
	group    string
	resource string
	sub      string
	verb     string
	allowed  bool
}

// serviceAccess is what each service account of deploy/kustomize/base/rbac
// needs for its work, and a right the services without Kubernetes rights
// must not have (least privilege).
var serviceAccess = []access{
	{"snapshotter", "stateguard.io", "snapshotpolicies", "", "list", true},
	{"snapshotter", "stateguard.io", "snapshotpolicies", "status", "patch", true},
	{"snapshotter", "snapshot.storage.k8s.io", "volumesnapshots", "", "create", true},
	{"snapshotter", "snapshot.storage.k8s.io", "volumesnapshots", "", "delete", true},
	{"snapshotter", "", "persistentvolumeclaims", "", "get", true},
	{"snapshotter", "", "pods", "exec", "create", true},
	{"snapshotter", "stateguard.io", "restores", "", "create", true},
	{"snapshotter", "stateguard.io", "restores", "status", "patch", true},
	{"certwatcher", "", "secrets", "", "list", true},
	{"certwatcher", "", "secrets", "", "update", true},
	{"certwatcher", "apps", "deployments", "", "patch", true},
	{"correlator", "", "secrets", "", "get", false},
	{"sastingest", "", "secrets", "", "get", false},
}

// operatorAccess is what the user of stateguardctl needs for policy,
// snapshot, snapshot create and restore (a SelfSubjectAccessReview).
var operatorAccess = []access{
	{"", "stateguard.io", "snapshotpolicies", "", "list", true},
	{"", "stateguard.io", "snapshotpolicies", "", "patch", true},
	{"", "snapshot.storage.k8s.io", "volumesnapshots", "", "list", true},
	{"", "stateguard.io", "restores", "", "list", true},
}

// crds are the CustomResourceDefinitions stateguard needs.
var crds = []string{
	"snapshotpolicies.stateguard.io",
	"restores.stateguard.io",
	"volumesnapshots.snapshot.storage.k8s.io",
	"volumesnapshotcontents.snapshot.storage.k8s.io",
	"volumesnapshotclasses.snapshot.storage.k8s.io",
}

type checkOptions struct {
	systemNamespace    string
	correlatorConsumer string
	consumers          []string
	skipKube           bool
}

func checkCmd(o *options) *cobra.Command {
	var co checkOptions
	c := &cobra.Command{
		Use:   "check",
		Short: "Check the installation: API, NATS, streams, consumers, CRDs, RBAC",
		Long: `Checks, one line each with ok or FAIL and the reason:
  - the correlator API answers /readyz and accepts the token (--server, --token);
  - NATS is reachable (--nats-url and the NATS credentials flags);
  - every stateguard stream exists, and the durable consumers of the correlator (--correlator-consumer prefix),
    the snapshotter (SNAPSHOT:snapshotter-pins, DECISION:snapshotter-restores, DECISION:snapshotter-recommendations)
    and certwatcher (CERTIFICATE:certwatcher-rotation) (--consumer);
  - the CRDs are installed and established (SnapshotPolicy, the CSI snapshot CRDs);
  - RBAC: each service account in --system-namespace has the rights its service needs, and the correlator and
    sastingest have none on Secrets (SubjectAccessReview), and you have the rights stateguardctl needs
    (SelfSubjectAccessReview).
The Kubernetes checks use --kubeconfig; without one (and no ~/.kube/config) they are skipped, or with --skip-kube.
Exits 1 when a line is FAIL.`,
		Example: "  stateguardctl check --kubeconfig .stateguard/kubeconfig --token-file .stateguard/tokens",
		Args:    exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			results := o.check(cmd.Context(), co)
			err := o.print(results, func(out io.Writer, _ bool) error {
				for _, r := range results {
					fmt.Fprintf(out, "%-4s  %-40s  %s\n", r.Status, r.Check, r.Detail)
				}
				return nil
			})
			for _, r := range results {
				if r.Status == checkFail {
					return errors.Join(err, errCheckFailed)
				}
			}
			return err
		},
	}
	c.Flags().StringVar(&co.systemNamespace, "system-namespace", "stateguard", "namespace of the stateguard service accounts")
	c.Flags().StringVar(&co.correlatorConsumer, "correlator-consumer", "correlator", "prefix of the correlator's durable consumers (its --consumer)")
	c.Flags().StringSliceVar(&co.consumers, "consumer", []string{events.StreamSnapshot + ":snapshotter-pins",
		events.StreamDecision + ":snapshotter-restores", events.StreamDecision + ":snapshotter-recommendations", events.StreamCertificate + ":certwatcher-rotation"}, "other durable consumers to check, as STREAM:NAME")
	c.Flags().BoolVar(&co.skipKube, "skip-kube", false, "skip the Kubernetes checks (CRDs, RBAC)")
	return c
}

func (o *options) check(ctx context.Context, co checkOptions) []checkResult {
	var out []checkResult
	add := func(name string, err error, okDetail string) {
		if err != nil {
			out = append(out, checkResult{Check: name, Status: checkFail, Detail: err.Error()})
			return
		}
		out = append(out, checkResult{Check: name, Status: checkOK, Detail: okDetail})
	}
	out = append(out, o.checkAPI(ctx)...)
	out = append(out, o.checkNATS(ctx, co)...)
	if co.skipKube {
		return append(out, checkResult{Check: "kubernetes", Status: checkSkip, Detail: "--skip-kube"})
	}
	dyn, core, err := o.kube.clients()
	if err != nil {
		return append(out, checkResult{Check: "kubernetes", Status: checkSkip, Detail: "no cluster to check: " + err.Error()})
	}
	for _, name := range crds {
		u, err := dyn.Resource(gvrCRD).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			err = established(u)
		}
		add("crd "+name, err, "installed and established")
	}
	for _, a := range serviceAccess {
		user := "system:serviceaccount:" + co.systemNamespace + ":" + a.sa
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + co.systemNamespace, "system:authenticated"},
			ResourceAttributes: a.attributes()}}
		res, err := core.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err == nil {
			err = a.verdict(res.Status)
		}
		add(fmt.Sprintf("rbac %s %s", a.sa, a.describe()), err, a.okText())
	}
	for _, a := range operatorAccess {
		ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: a.attributes()}}
		res, err := core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
		if err == nil {
			err = a.verdict(res.Status)
		}
		add("rbac you "+a.describe(), err, a.okText())
	}
	return out
}

func (a access) attributes() *authorizationv1.ResourceAttributes {
	return &authorizationv1.ResourceAttributes{Group: a.group, Resource: a.resource, Subresource: a.sub, Verb: a.verb}
}

func (a access) describe() string {
	r := a.resource
	if a.sub != "" {
		r += "/" + a.sub
	}
	if a.group != "" {
		r += "." + a.group
	}
	return a.verb + " " + r
}

func (a access) okText() string {
	if a.allowed {
		return "allowed"
	}
	return "denied, as it should be"
}

func (a access) verdict(st authorizationv1.SubjectAccessReviewStatus) error {
	switch {
	case a.allowed && !st.Allowed:
		return fmt.Errorf("denied (%s): the service needs it; apply deploy/kustomize/base/rbac", or(st.Reason, or(st.EvaluationError, "no rule allows it")))
	case !a.allowed && st.Allowed:
		return fmt.Errorf("allowed (%s): more than the service needs", or(st.Reason, "a rule allows it"))
	}
	return nil
}

func established(u *unstructured.Unstructured) error {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" {
			if m["status"] == "True" {
				return nil
			}
			return fmt.Errorf("not established: %v", m["message"])
		}
	}
	return errors.New("not established yet")
}

// checkAPI checks the correlator's readiness and the token.
func (o *options) checkAPI(ctx context.Context) []checkResult {
	var out []checkResult
	ready := checkResult{Check: "correlator api " + o.server, Status: checkOK, Detail: "ready"}
	if err := o.call(ctx, http.MethodGet, o.server, "/readyz", nil, nil); err != nil {
		ready.Status, ready.Detail = checkFail, err.Error()
		return append(out, ready)
	}
	out = append(out, ready)
	tok := checkResult{Check: "correlator api token", Status: checkOK, Detail: "accepted"}
	if o.token == "" {
		tok.Status, tok.Detail = checkFail, "no token: give --token or --token-file"
	} else if err := o.get(ctx, "/v1/apps", nil); err != nil {
		tok.Status, tok.Detail = checkFail, err.Error()
	}
	return append(out, tok)
}

// checkNATS checks the connection, the streams and the durable consumers.
func (o *options) checkNATS(ctx context.Context, co checkOptions) []checkResult {
	cfg := o.nats
	cfg.Name = "stateguardctl-check"
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client, err := events.Connect(cctx, cfg)
	if err != nil {
		return []checkResult{{Check: "nats", Status: checkFail, Detail: err.Error()}}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Close(sctx)
	}()
	out := []checkResult{{Check: "nats", Status: checkOK, Detail: "connected to " + client.Conn().ConnectedUrlRedacted()}}
	js := client.JetStream()
	for _, sc := range events.StreamConfigs(events.StreamOptions{}) {
		r := checkResult{Check: "stream " + sc.Name, Status: checkOK}
		s, err := js.Stream(cctx, sc.Name)
		if err != nil {
			r.Status, r.Detail = checkFail, err.Error()+" (run the services' bootstrap)"
		} else {
			info := s.CachedInfo()
			r.Detail = fmt.Sprintf("%d messages, %d replicas", info.State.Msgs, info.Config.Replicas)
		}
		out = append(out, r)
	}
	want := co.consumers
	for _, cc := range engine.ConsumerConfigs(co.correlatorConsumer, 1) {
		want = append(want, cc.Stream+":"+cc.Name)
	}
	for _, sn := range want {
		stream, name, ok := strings.Cut(sn, ":")
		r := checkResult{Check: "consumer " + sn, Status: checkOK}
		if !ok {
			r.Status, r.Detail = checkFail, "want STREAM:NAME"
			out = append(out, r)
			continue
		}
		c, err := js.Consumer(cctx, stream, name)
		if err != nil {
			r.Status, r.Detail = checkFail, err.Error()
		} else {
			info := c.CachedInfo()
			r.Detail = fmt.Sprintf("%d pending, %d waiting for ack, %d redelivered", info.NumPending, info.NumAckPending, info.NumRedelivered)
		}
		out = append(out, r)
	}
	return out
}
