package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// DataFile is the file the demo app keeps in its claim's volume.
const DataFile = "orders.db"

// writeData writes the app's data file into the volume directory of claim
// ns/name and returns its SHA-256 (hex).
func writeData(ctx context.Context, claimDir ClaimDirFunc, ns, name, content string) (string, error) {
	dir, err := claimDir(ctx, ns, name)
	if err != nil {
		return "", fmt.Errorf("volume of %s/%s: %w", ns, name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, DataFile), []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("write the data file: %w", err)
	}
	return dataChecksum(ctx, claimDir, ns, name)
}

// dataChecksum is the SHA-256 (hex) of the data file in the volume bound
// to claim ns/name now.
func dataChecksum(ctx context.Context, claimDir ClaimDirFunc, ns, name string) (string, error) {
	dir, err := claimDir(ctx, ns, name)
	if err != nil {
		return "", fmt.Errorf("volume of %s/%s: %w", ns, name, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, DataFile))
	if err != nil {
		return "", fmt.Errorf("read the data file: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ClaimDirFunc returns the directory holding the data of the volume bound
// to claim ns/name (kubetest.Cluster.ClaimDir on the local cluster).
type ClaimDirFunc func(ctx context.Context, ns, name string) (string, error)

// restoreRequest is the body of the correlator's POST /v1/restores (the
// one `stateguardctl restore create --incident ID` sends).
type restoreRequest struct {
	IncidentID string `json:"incident_id,omitempty"`
	Reason     string `json:"reason"`
}

// restoreAccepted is the part of the 202 answer the demo reads.
type restoreAccepted struct {
	Restore   string `json:"restore"`
	Namespace string `json:"namespace"`
	PVC       string `json:"pvc"`
	Snapshot  string `json:"snapshot"`
	Actor     string `json:"actor"`
	RequestID string `json:"request_id"`
}

// requestRestore asks the correlator's operator API to restore the restore
// point of incident, as `stateguardctl restore create --incident` does.
func requestRestore(ctx context.Context, hc *http.Client, base, token, incident string) (restoreAccepted, error) {
	var acc restoreAccepted
	body, err := json.Marshal(restoreRequest{IncidentID: incident, Reason: "restore the restore point of incident " + incident})
	if err != nil {
		return acc, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/restores", bytes.NewReader(body))
	if err != nil {
		return acc, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return acc, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusAccepted {
		return acc, fmt.Errorf("POST /v1/restores: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, &acc); err != nil {
		return acc, fmt.Errorf("POST /v1/restores answer: %w", err)
	}
	if acc.Restore == "" || acc.Namespace == "" {
		return acc, fmt.Errorf("POST /v1/restores answer names no Restore: %s", strings.TrimSpace(string(b)))
	}
	return acc, nil
}

// RestoreGVR is the Restore resource the snapshotter carries out.
var RestoreGVR = schema.GroupVersionResource{Group: "stateguard.io", Version: "v1alpha1", Resource: "restores"}

// restoreStatus is the part of a Restore's status the demo follows.
type restoreStatus struct {
	Phase          string `json:"phase"`
	Message        string `json:"message"`
	SafetySnapshot string `json:"safetySnapshot"`
	OldPV          string `json:"oldPV"`
	NewPV          string `json:"newPV"`
	FailureReason  string `json:"failureReason"`
	Phases         []struct {
		Phase   string      `json:"phase"`
		At      metav1.Time `json:"at"`
		Message string      `json:"message,omitempty"`
	} `json:"phases"`
}

// restoreEnded says whether a Restore's phase is a final one.
func restoreEnded(phase string) bool {
	return phase == "Completed" || phase == "Failed" || phase == "RolledBack"
}

// followRestore polls the Restore ns/name until it ends, printing one line
// per phase it entered (from status.phases, so that a phase shorter than a
// poll is told too), like `stateguardctl restore create --wait`. It returns
// the final status; an error unless the Restore Completed.
func followRestore(ctx context.Context, dyn dynamic.Interface, ns, name string, timeout time.Duration, print func(string)) (restoreStatus, error) {
	var st restoreStatus
	printed, last := 0, ""
	err := until(ctx, timeout, func() bool {
		u, err := dyn.Resource(RestoreGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false // not created yet (NotFound), or the API server busy: poll on
		}
		raw, _ := u.Object["status"].(map[string]any)
		st = restoreStatus{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st); err != nil {
			return false
		}
		for ; printed < len(st.Phases); printed++ {
			p := st.Phases[printed]
			print(phaseLine(ns, name, p.Phase, p.Message))
			last = p.Phase
		}
		if st.Phase != "" && st.Phase != last {
			print(phaseLine(ns, name, st.Phase, st.Message))
			last = st.Phase
		}
		return restoreEnded(st.Phase)
	})
	if err != nil {
		return st, fmt.Errorf("restore %s/%s still %q: %w", ns, name, st.Phase, err)
	}
	if st.Phase != "Completed" {
		return st, fmt.Errorf("restore %s/%s %s: %s %s", ns, name, st.Phase, st.FailureReason, st.Message)
	}
	return st, nil
}

func phaseLine(ns, name, phase, msg string) string {
	line := fmt.Sprintf("demo: restore %s/%s %-15s", ns, name, phase)
	if msg != "" {
		line += " " + msg
	}
	return strings.TrimRight(line, " ")
}
