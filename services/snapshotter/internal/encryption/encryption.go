package encryption

import (
	"fmt"
	"slices"
	"strings"

	"github.com/stateguard/stateguard/pkg/events"
)

// Class is what a StorageClass or a VolumeSnapshotClass says: its kind and
// name (for the evidence), the CSI driver and the parameters.
type Class struct {
	Kind       string // StorageClass or VolumeSnapshotClass
	Name       string
	Driver     string
	Parameters map[string]string
}

// Finding is the decision and what it rests on.
type Finding struct {
	// Status is events.EncryptionEncrypted, EncryptionUnencrypted or
	// EncryptionUnknown.
	Status string
	// Evidence says, one sentence each, which class, driver and parameter
	// decided, or why nothing could be said.
	Evidence []string
}

// Encrypted reports whether the finding is encrypted.
func (f Finding) Encrypted() bool { return f.Status == events.EncryptionEncrypted }

// Param is one StorageClass parameter a driver documents for encryption.
type Param struct {
	Name string
	// On says whether a value turns encryption on; nil means any non-empty
	// value does (a key's name or id).
	On func(value string) bool
	// Off says whether a value asks for an unencrypted volume; nil: none.
	Off func(value string) bool
}

// Driver is a row of the table: a CSI driver, the parameters that encrypt
// its volumes, and what its documentation says when none is set.
type Driver struct {
	Name   string
	Params []Param
	// Absent is the status when no parameter is set, with the reason.
	Absent    string
	AbsentWhy string
	// Docs is where the parameters are documented.
	Docs string
}

func isTrue(v string) bool  { return strings.EqualFold(strings.TrimSpace(v), "true") }
func isFalse(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "false") }

// Documented is the table of documented encryption parameters, read from
// each driver's documentation (services/snapshotter/README.md cites them).
// A snapshot of an encrypted volume is encrypted with the volume's key by
// each of these providers.
var Documented = []Driver{
	{
		Name:   "ebs.csi.aws.com",
		Params: []Param{{Name: "encrypted", On: isTrue, Off: isFalse}},
		Absent: events.EncryptionUnknown, AbsentWhy: "EBS encrypts the volume only if the account enables EBS encryption by default, which the snapshotter cannot see",
		Docs: "https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/parameters.md",
	},
	{
		Name:   "pd.csi.storage.gke.io",
		Params: []Param{{Name: "disk-encryption-kms-key"}},
		Absent: events.EncryptionEncrypted, AbsentWhy: "Compute Engine encrypts every persistent disk at rest with Google-managed keys",
		Docs: "https://cloud.google.com/kubernetes-engine/docs/how-to/using-cmek",
	},
	{
		Name:   "disk.csi.azure.com",
		Params: []Param{{Name: "diskEncryptionSetID"}},
		Absent: events.EncryptionEncrypted, AbsentWhy: "Azure encrypts every managed disk at rest with platform-managed keys (server-side encryption)",
		Docs: "https://github.com/kubernetes-sigs/azuredisk-csi-driver/blob/master/docs/driver-parameters.md",
	},
	{
		Name:   "rbd.csi.ceph.com",
		Params: []Param{{Name: "encrypted", On: isTrue, Off: isFalse}},
		Absent: events.EncryptionUnencrypted, AbsentWhy: "Ceph RBD images are not encrypted unless the class sets encrypted: \"true\"",
		Docs: "https://github.com/ceph/ceph-csi/blob/devel/docs/rbd/deploy.md",
	},
	{
		Name:   "driver.longhorn.io",
		Params: []Param{{Name: "encrypted", On: isTrue, Off: isFalse}},
		Absent: events.EncryptionUnencrypted, AbsentWhy: "Longhorn volumes are not encrypted unless the class sets encrypted: \"true\"",
		Docs: "https://longhorn.io/docs/latest/advanced-resources/security/volume-encryption/",
	},
	{
		Name:   "pxd.portworx.com",
		Params: []Param{{Name: "secure", On: isTrue, Off: isFalse}},
		Absent: events.EncryptionUnencrypted, AbsentWhy: "Portworx volumes are not encrypted unless the class sets secure: \"true\"",
		Docs: "https://docs.portworx.com/portworx-enterprise/operations/operate-kubernetes/storage-operations/create-pvcs/create-encrypted-pvcs",
	},
}

// Allow is an operator's allowlist entry: a class of driver Driver whose
// parameter Parameter equals Value is encrypted.
type Allow struct {
	Driver, Parameter, Value string
}

func (a Allow) String() string { return a.Driver + ":" + a.Parameter + "=" + a.Value }

// ParseAllow reads "driver:parameter=value" (--encryption-allow).
func ParseAllow(s string) (Allow, error) {
	driver, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	param, value, ok2 := strings.Cut(rest, "=")
	if !ok || !ok2 || driver == "" || param == "" || value == "" {
		return Allow{}, fmt.Errorf("encryption allowlist entry %q: want driver:parameter=value, such as csi.example.com:encryption=aes-xts", s)
	}
	return Allow{Driver: driver, Parameter: param, Value: value}, nil
}

// Decide says whether a snapshot of a claim provisioned by sc (nil: the
// claim names no StorageClass) and taken with vsc (nil: none found) is
// encrypted at rest. In order:
//
//  1. an allowlist entry matching a parameter of either class: encrypted;
//  2. the driver's row in table: a parameter that turns encryption on,
//     encrypted; one that turns it off, unencrypted; none set, what the
//     driver's documentation says then (Driver.Absent);
//  3. anything else (no StorageClass, a driver not in the table):
//     unknown, saying why.
//
// The snapshot's driver is the VolumeSnapshotClass's when there is one;
// a StorageClass of another driver says nothing about the snapshot.
func Decide(sc, vsc *Class, table []Driver, allow []Allow) Finding {
	if sc != nil && vsc != nil && sc.Driver != vsc.Driver {
		return Finding{Status: events.EncryptionUnknown, Evidence: []string{fmt.Sprintf(
			"StorageClass %s is of driver %s but VolumeSnapshotClass %s of driver %s", sc.Name, sc.Driver, vsc.Name, vsc.Driver)}}
	}
	for _, c := range []*Class{sc, vsc} {
		if c == nil {
			continue
		}
		for _, a := range allow {
			if a.Driver == c.Driver && c.Parameters[a.Parameter] == a.Value {
				return Finding{Status: events.EncryptionEncrypted, Evidence: []string{fmt.Sprintf(
					"%s %s: driver %s parameter %s=%s is in the operator's allowlist (--encryption-allow)", c.Kind, c.Name, c.Driver, a.Parameter, a.Value)}}
			}
		}
	}
	if sc == nil {
		return Finding{Status: events.EncryptionUnknown, Evidence: []string{"the claim names no StorageClass, so nothing says how its volume was provisioned"}}
	}
	i := slices.IndexFunc(table, func(d Driver) bool { return d.Name == sc.Driver })
	if i < 0 {
		return Finding{Status: events.EncryptionUnknown, Evidence: []string{fmt.Sprintf(
			"StorageClass %s: driver %s is not in the table of documented encryption parameters and no --encryption-allow entry matches", sc.Name, sc.Driver)}}
	}
	d := table[i]
	for _, p := range d.Params {
		v, set := sc.Parameters[p.Name]
		if !set {
			continue
		}
		switch {
		case p.On == nil && strings.TrimSpace(v) != "", p.On != nil && p.On(v):
			return Finding{Status: events.EncryptionEncrypted, Evidence: []string{fmt.Sprintf(
				"StorageClass %s: driver %s parameter %s=%s encrypts the volume and its snapshots (%s)", sc.Name, d.Name, p.Name, v, d.Docs)}}
		case p.Off != nil && p.Off(v):
			return Finding{Status: events.EncryptionUnencrypted, Evidence: []string{fmt.Sprintf(
				"StorageClass %s: driver %s parameter %s=%s asks for an unencrypted volume (%s)", sc.Name, d.Name, p.Name, v, d.Docs)}}
		}
	}
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return Finding{Status: d.Absent, Evidence: []string{fmt.Sprintf(
		"StorageClass %s: driver %s without %s: %s (%s)", sc.Name, d.Name, strings.Join(names, " or "), d.AbsentWhy, d.Docs)}}
}
