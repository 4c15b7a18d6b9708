package restore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultRecommendationsBucket is the KV bucket of the current
// recommendations.
const DefaultRecommendationsBucket = "snapshotter-recommendations"

// RecommendationStore keeps the current recommendation of every incident
// and claim in a JetStream KV bucket (key <namespace>.<incident>.<pvc>,
// each part hex-encoded), written with compare-and-set so that two
// handlers never lose a revision.
type RecommendationStore struct{ kv jetstream.KeyValue }

var _ Recommendations = (*RecommendationStore)(nil)

// OpenRecommendationStore creates (or, with a binding client, looks up)
// the bucket.
func OpenRecommendationStore(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*RecommendationStore, error) {
	if bucket == "" {
		bucket = DefaultRecommendationsBucket
	}
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "stateguard snapshotter: the current restore recommendation per incident and claim",
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("recommendations bucket %s: %w", bucket, err)
	}
	return &RecommendationStore{kv: kv}, nil
}

func recKey(namespace, incident, pvc string) string {
	return hex.EncodeToString([]byte(namespace)) + "." + hex.EncodeToString([]byte(incident)) + "." + hex.EncodeToString([]byte(pvc))
}

// Keep stores rec unless the stored one supersedes it; kept says whether
// it was stored. A concurrent write is an error (the event is redelivered
// and decided again).
func (s *RecommendationStore) Keep(ctx context.Context, rec Recommendation) (kept bool, err error) {
	key := recKey(rec.Namespace, rec.Incident, rec.PVC)
	var cur *Recommendation
	var rev uint64
	entry, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return false, fmt.Errorf("get recommendation %s: %w", key, err)
	default:
		var c Recommendation
		if err := json.Unmarshal(entry.Value(), &c); err != nil {
			return false, fmt.Errorf("decode recommendation %s: %w", key, err)
		}
		cur, rev = &c, entry.Revision()
	}
	if !Supersedes(rec, cur) {
		return false, nil
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	if cur == nil {
		_, err = s.kv.Create(ctx, key, data)
	} else {
		_, err = s.kv.Update(ctx, key, data, rev)
	}
	if err != nil {
		return false, fmt.Errorf("store recommendation %s: %w", key, err)
	}
	return true, nil
}

// Recommended is an incident's current recommendation for each claim of
// namespace.
func (s *RecommendationStore) Recommended(ctx context.Context, namespace, incident string) ([]Recommendation, error) {
	keys, err := s.kv.ListKeysFiltered(ctx, hex.EncodeToString([]byte(namespace))+"."+hex.EncodeToString([]byte(incident))+".*")
	if err != nil {
		return nil, fmt.Errorf("list recommendations: %w", err)
	}
	var out []Recommendation
	for key := range keys.Keys() {
		entry, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get recommendation %s: %w", key, err)
		}
		var r Recommendation
		if err := json.Unmarshal(entry.Value(), &r); err != nil {
			return nil, fmt.Errorf("decode recommendation %s: %w", key, err)
		}
		out = append(out, r)
	}
	return out, nil
}
