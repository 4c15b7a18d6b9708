package encryption

import (
	"strings"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
)

func sc(driver string, params map[string]string) *Class {
	return &Class{Kind: "StorageClass", Name: "fast", Driver: driver, Parameters: params}
}

func vsc(driver string, params map[string]string) *Class {
	return &Class{Kind: "VolumeSnapshotClass", Name: "snap", Driver: driver, Parameters: params}
}

func TestDecide(t *testing.T) {
	allow := []Allow{{Driver: "csi.example.com", Parameter: "tier", Value: "secure"}}
	tests := []struct {
		name      string
		sc, vsc   *Class
		want      string
		evidences []string // substrings of the evidence
	}{
		{"EBS with encrypted=true", sc("ebs.csi.aws.com", map[string]string{"encrypted": "true", "kmsKeyId": "arn:aws:kms:k"}), vsc("ebs.csi.aws.com", nil),
			events.EncryptionEncrypted, []string{"StorageClass fast", "encrypted=true", "aws-ebs-csi-driver"}},
		{"EBS with encrypted=True (case)", sc("ebs.csi.aws.com", map[string]string{"encrypted": "True"}), nil, events.EncryptionEncrypted, nil},
		{"EBS with encrypted=false", sc("ebs.csi.aws.com", map[string]string{"encrypted": "false"}), nil, events.EncryptionUnencrypted, []string{"asks for an unencrypted volume"}},
		{"EBS without the parameter: the account default is unseen", sc("ebs.csi.aws.com", nil), nil, events.EncryptionUnknown, []string{"encryption by default"}},
		{"EBS kmsKeyId alone does not encrypt", sc("ebs.csi.aws.com", map[string]string{"kmsKeyId": "arn:aws:kms:k"}), nil, events.EncryptionUnknown, nil},
		{"GCE PD with a customer key", sc("pd.csi.storage.gke.io", map[string]string{"disk-encryption-kms-key": "projects/p/locations/l/keyRings/r/cryptoKeys/k"}), nil,
			events.EncryptionEncrypted, []string{"disk-encryption-kms-key="}},
		{"GCE PD without: Google-managed keys", sc("pd.csi.storage.gke.io", nil), nil, events.EncryptionEncrypted, []string{"Google-managed keys"}},
		{"Azure Disk with a disk encryption set", sc("disk.csi.azure.com", map[string]string{"diskEncryptionSetID": "/subscriptions/s/des"}), nil, events.EncryptionEncrypted, nil},
		{"Azure Disk without: platform-managed keys", sc("disk.csi.azure.com", nil), nil, events.EncryptionEncrypted, []string{"platform-managed"}},
		{"Ceph RBD encrypted", sc("rbd.csi.ceph.com", map[string]string{"encrypted": "true"}), nil, events.EncryptionEncrypted, nil},
		{"Ceph RBD without", sc("rbd.csi.ceph.com", map[string]string{"pool": "rbd"}), nil, events.EncryptionUnencrypted, []string{"not encrypted unless"}},
		{"Longhorn encrypted", sc("driver.longhorn.io", map[string]string{"encrypted": "true"}), nil, events.EncryptionEncrypted, nil},
		{"Longhorn without", sc("driver.longhorn.io", nil), nil, events.EncryptionUnencrypted, nil},
		{"Portworx secure", sc("pxd.portworx.com", map[string]string{"secure": "true"}), nil, events.EncryptionEncrypted, nil},
		{"an empty key name is no key", sc("pd.csi.storage.gke.io", map[string]string{"disk-encryption-kms-key": " "}), nil, events.EncryptionEncrypted, []string{"Google-managed"}},
		{"a driver not in the table", sc("csi.example.com", map[string]string{"tier": "fast"}), nil, events.EncryptionUnknown, []string{"not in the table", "csi.example.com"}},
		{"allowlisted on the StorageClass", sc("csi.example.com", map[string]string{"tier": "secure"}), nil, events.EncryptionEncrypted, []string{"allowlist", "tier=secure"}},
		{"allowlisted on the VolumeSnapshotClass", sc("csi.example.com", nil), vsc("csi.example.com", map[string]string{"tier": "secure"}), events.EncryptionEncrypted, []string{"VolumeSnapshotClass snap"}},
		{"the allowlist names another driver", sc("csi.other.com", map[string]string{"tier": "secure"}), nil, events.EncryptionUnknown, nil},
		{"the allowlist wants another value", sc("csi.example.com", map[string]string{"tier": "Secure"}), nil, events.EncryptionUnknown, nil},
		{"no StorageClass", nil, vsc("ebs.csi.aws.com", nil), events.EncryptionUnknown, []string{"names no StorageClass"}},
		{"classes of two drivers", sc("ebs.csi.aws.com", map[string]string{"encrypted": "true"}), vsc("csi.example.com", map[string]string{"tier": "secure"}), events.EncryptionUnknown, []string{"of driver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.sc, tt.vsc, Documented, allow)
			if got.Status != tt.want {
				t.Fatalf("status %s, want %s (evidence %q)", got.Status, tt.want, got.Evidence)
			}
			if len(got.Evidence) == 0 {
				t.Fatal("no evidence")
			}
			for _, e := range tt.evidences {
				if !strings.Contains(strings.Join(got.Evidence, "\n"), e) {
					t.Errorf("evidence %q lacks %q", got.Evidence, e)
				}
			}
		})
	}
}

func TestEveryDocumentedDriverCitesItsDocs(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Documented {
		if seen[d.Name] {
			t.Errorf("%s twice", d.Name)
		}
		seen[d.Name] = true
		if !strings.HasPrefix(d.Docs, "https://") || len(d.Params) == 0 || d.AbsentWhy == "" {
			t.Errorf("%s: incomplete row %+v", d.Name, d)
		}
	}
}

func TestParseAllow(t *testing.T) {
	got, err := ParseAllow(" csi.example.com:tier=secure=yes ")
	if err != nil || got != (Allow{Driver: "csi.example.com", Parameter: "tier", Value: "secure=yes"}) {
		t.Fatalf("ParseAllow = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "csi.example.com", "csi.example.com:tier", ":tier=x", "d:=x", "d:p="} {
		if _, err := ParseAllow(bad); err == nil {
			t.Errorf("ParseAllow(%q) accepted", bad)
		}
	}
}
