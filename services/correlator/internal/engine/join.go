package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// maxPending bounds the uploads of one repository waiting for a workload:
// past it, new ones are recorded as not joined and not joined later.
const maxPending = 5000

// The join of uploads that name no application (GitHub's uploaders) lives
// beside the namespace states, in the same KV bucket:
//
//	repo.<hash of owner/name>  repoEntry: the apps seen running the
//	                           repository's code, and the ids of its
//	                           uploads not joined yet
//	upload.<upload id>         model.UploadJoin: joined to which apps, or
//	                           not joined and why
//
// One mutex serialises the joins (uploads without an app and observations
// naming a repository are few), so an upload and the workload it waits for
// never miss each other. Every step is idempotent: a redelivered upload or
// observation finds its record and applies the same inputs again, which the
// namespaces see as duplicates.
type joiner struct {
	kv    joinKV
	rules model.Rules
	mu    sync.Mutex
	total *prometheus.CounterVec
}

// repoEntry is what the correlator knows of one repository.
type repoEntry struct {
	Repository string             `json:"repository"`
	Targets    []model.RepoTarget `json:"targets,omitempty"`
	Pending    []string           `json:"pending,omitempty"`
}

func newJoiner(kv joinKV, rules model.Rules, reg prometheus.Registerer) *joiner {
	j := &joiner{kv: kv, rules: rules, total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stateguard_correlator_upload_joins_total",
		Help: "Uploads naming no application, by outcome: joined (on arrival), not_joined (kept until a workload names the repository), joined_later.",
	}, []string{"outcome"})}
	if reg != nil {
		reg.MustRegister(j.total)
	}
	return j
}

func repoKey(repo string) string {
	h := sha256.Sum256([]byte(repo))
	return "repo." + hex.EncodeToString(h[:16])
}

func uploadKey(id string) string { return "upload." + id }

// joinKV is the part of the state bucket the joiner uses (bucketKV).
type joinKV interface {
	// Get reads key; rev is 0 when it is not there.
	Get(ctx context.Context, key string) (value []byte, rev uint64, err error)
	Put(ctx context.Context, key string, value []byte) error
	// CAS writes value if key's revision is still rev (0: absent), else
	// returns errConflict.
	CAS(ctx context.Context, key string, value []byte, rev uint64) error
}

// errConflict: another correlator changed the entry since it was read.
var errConflict = errors.New("join entry changed meanwhile")

// getJSON reads key into v; rev is its revision, 0 when it is not there.
func (j *joiner) getJSON(ctx context.Context, key string, v any) (rev uint64, err error) {
	b, rev, err := j.kv.Get(ctx, key)
	if err != nil || rev == 0 {
		return 0, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return 0, events.Permanent(fmt.Errorf("decode %s: %w", key, err))
	}
	return rev, nil
}

func (j *joiner) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return j.kv.Put(ctx, key, b)
}

// casJSON writes v to key if its revision is still rev (0: absent).
func (j *joiner) casJSON(ctx context.Context, key string, v any, rev uint64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return j.kv.CAS(ctx, key, b, rev)
}

// Record reads the join record of an upload; found is false for an
// upload the correlator never had to join (it named its application, or
// has not arrived).
func (j *joiner) Record(ctx context.Context, id string) (rec model.UploadJoin, found bool, err error) {
	rev, err := j.getJSON(ctx, uploadKey(id), &rec)
	return rec, rev != 0, err
}

// retry runs step until it does not lose a compare-and-set race on a
// repository entry (correlator replicas share the bucket).
func retry(ctx context.Context, step func() error) error {
	for {
		err := step()
		if !errors.Is(err, errConflict) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// upload joins an upload that names no application (in.Join set) with the
// targets known now, applies it to their namespaces with apply, and keeps
// it as pending when there are none. The repository entry is the point of
// agreement: the pending id is added by compare-and-set on the entry the
// decision was taken from, so a workload learnt meanwhile (by this or
// another correlator) makes it decide again.
func (j *joiner) upload(ctx context.Context, in model.Input, apply func(model.Input) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return retry(ctx, func() error {
		var ent repoEntry
		rev, err := j.getJSON(ctx, repoKey(in.Join.Repository), &ent)
		if err != nil {
			return err
		}
		ent.Repository = in.Join.Repository
		rec, inputs := model.JoinUpload(j.rules, in, ent.Targets)
		var old model.UploadJoin
		oldRev, err := j.getJSON(ctx, uploadKey(rec.UploadID), &old)
		if err != nil {
			return err
		}
		if oldRev != 0 {
			rec = model.KeepJoined(&old, rec)
			inputs = model.JoinedInputs(rec)
		}
		for _, in := range inputs {
			if err := apply(in); err != nil {
				return err
			}
		}
		pending := rec.State == model.JoinNotJoined && !slices.Contains(ent.Pending, rec.UploadID)
		if pending && len(ent.Pending) >= maxPending {
			rec.Reason += fmt.Sprintf("; over %d uploads of the repository wait already: this one will not be joined when a workload appears", maxPending)
			pending = false
		}
		// The record first: whoever finds the id pending finds its record.
		if err := j.putJSON(ctx, uploadKey(rec.UploadID), rec); err != nil {
			return err
		}
		if pending {
			ent.Pending = append(ent.Pending, rec.UploadID)
			if err := j.casJSON(ctx, repoKey(ent.Repository), ent, rev); err != nil {
				return err
			}
		}
		if oldRev == 0 {
			j.total.WithLabelValues(map[bool]string{true: "not_joined", false: "joined"}[rec.State == model.JoinNotJoined]).Inc()
		}
		return nil
	})
}

// observed records the applications an observation names repositories
// for, and joins the uploads of those repositories that waited for one.
func (j *joiner) observed(ctx context.Context, targets map[string][]model.RepoTarget, apply func(model.Input) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	repos := make([]string, 0, len(targets))
	for repo := range targets {
		repos = append(repos, repo)
	}
	slices.Sort(repos)
	for _, repo := range repos {
		err := retry(ctx, func() error {
			var ent repoEntry
			rev, err := j.getJSON(ctx, repoKey(repo), &ent)
			if err != nil {
				return err
			}
			ent.Repository = repo
			changed := false
			for _, t := range targets[repo] {
				if !slices.ContainsFunc(ent.Targets, func(o model.RepoTarget) bool { return o.Key() == t.Key() }) {
					ent.Targets, changed = append(ent.Targets, t), true
				}
			}
			if !changed {
				return nil // nothing new: what waits, waits for another app
			}
			var still []string
			for _, id := range ent.Pending {
				joined, err := j.joinPending(ctx, id, ent.Targets, apply)
				if err != nil {
					return err
				}
				if !joined {
					still = append(still, id)
				}
			}
			ent.Pending = still
			return j.casJSON(ctx, repoKey(repo), ent, rev)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// joinPending tries again to join a pending upload with the targets known
// now; joined is true once it is (or its record is gone).
func (j *joiner) joinPending(ctx context.Context, id string, seen []model.RepoTarget, apply func(model.Input) error) (joined bool, err error) {
	var rec model.UploadJoin
	rev, err := j.getJSON(ctx, uploadKey(id), &rec)
	if err != nil || rev == 0 {
		return rev == 0, err
	}
	targets, reason := model.JoinTargets(j.rules, rec.Keys, seen)
	if len(targets) == 0 {
		if reason != rec.Reason {
			rec.Reason = reason
			return false, j.putJSON(ctx, uploadKey(id), rec)
		}
		return false, nil
	}
	next := model.KeepJoined(&rec, &model.UploadJoin{UploadID: rec.UploadID, Keys: rec.Keys, Upload: rec.Upload, Targets: targets})
	for _, in := range model.JoinedInputs(next) {
		if err := apply(in); err != nil {
			return false, err
		}
	}
	if err := j.putJSON(ctx, uploadKey(id), next); err != nil {
		return false, err
	}
	if rec.State != model.JoinJoined {
		j.total.WithLabelValues("joined_later").Inc()
	}
	return true, nil
}

// keyLister lists the keys of the state bucket that match a subject
// filter (bucketKV does); a joinKV without it lists no join records.
type keyLister interface {
	Keys(ctx context.Context, filter string) ([]string, error)
}

// Keys lists the bucket's keys matching filter ("upload.*").
func (b bucketKV) Keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := b.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", filter, err)
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
	}
	return out, nil
}

// Records lists the join records in upload id order, from the first id
// after after, at most limit of them, only those in state (model.JoinJoined
// or model.JoinNotJoined; "" for both). more reports that further records
// match. It reads the records one by one until limit match: a page costs
// the listing of the uploads' keys and the records it skips.
func (j *joiner) Records(ctx context.Context, state, after string, limit int) (recs []model.UploadJoin, more bool, err error) {
	l, ok := j.kv.(keyLister)
	if !ok {
		return nil, false, nil
	}
	keys, err := l.Keys(ctx, uploadKey("*"))
	if err != nil {
		return nil, false, err
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // a listing during writes may repeat a key
	for _, k := range keys {
		if k <= uploadKey(after) {
			continue
		}
		var rec model.UploadJoin
		rev, err := j.getJSON(ctx, k, &rec)
		if err != nil {
			return nil, false, err
		}
		if rev == 0 || (state != "" && rec.State != state) {
			continue
		}
		if len(recs) == limit {
			return recs, true, nil
		}
		recs = append(recs, rec)
	}
	return recs, false, nil
}

// UploadJoins lists the join records of uploads that named no application
// (joiner.Records): state "" for all, model.JoinNotJoined for those still
// waiting for a workload of their repository or refused one.
func (e *Engine) UploadJoins(ctx context.Context, state, after string, limit int) (recs []model.UploadJoin, more bool, err error) {
	return e.join.Records(ctx, state, after, limit)
}
