package events

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// ObservationID is the event id of a workload.observed payload, derived
// from its content (namespace, PVC, the time the set was first seen, and
// each pod with its owner, labels, digests, Secrets and join annotations, in any order), so
// a resync of the same observation is recognised as a repeat. Only the
// Resync flag is left out.
func ObservationID(p WorkloadObserved) string {
	pods := make([]string, 0, len(p.Pods))
	for _, pod := range p.Pods {
		var b strings.Builder
		b.WriteString(pod.Pod)
		if o := pod.Owner; o != nil {
			b.WriteString("\x01" + o.Kind + "\x01" + o.Namespace + "\x01" + o.Name)
		}
		b.WriteString("\x02" + pod.App + "\x02" + pod.Version)
		for _, l := range sortedCopy(pod.Labels) {
			b.WriteString("\x03" + l)
		}
		cs := make([]string, 0, len(pod.Containers))
		for _, c := range pod.Containers {
			cs = append(cs, c.Name+"\x05"+c.Image+"\x05"+c.ImageID+"\x05"+c.Digest)
		}
		for _, c := range sortedCopy(cs) {
			b.WriteString("\x04" + c)
		}
		if pod.StartedAt != nil {
			b.WriteString("\x06" + pod.StartedAt.UTC().Format(time.RFC3339Nano))
		}
		for _, s := range sortedCopy(pod.Secrets) {
			b.WriteString("\x07" + s)
		}
		// Join annotations, when there are any (the ids of pods without
		// them are the ones published before they were observed).
		keys := make([]string, 0, len(pod.Annotations))
		for k := range pod.Annotations {
			keys = append(keys, k)
		}
		for _, k := range sortedCopy(keys) {
			b.WriteString("\x08" + k + "\x08" + pod.Annotations[k])
		}
		pods = append(pods, b.String())
	}
	h := sha256.New()
	h.Write([]byte(p.Namespace + "\x00" + p.PVC + "\x00" + p.ObservedAt.UTC().Format(time.RFC3339Nano)))
	for _, s := range sortedCopy(pods) {
		h.Write([]byte("\x00" + s))
	}
	return "observed-" + hex.EncodeToString(h.Sum(nil))[:32]
}

func sortedCopy(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return out
}
