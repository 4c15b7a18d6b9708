package main

import "testing"

func TestChooseCluster(t *testing.T) {
	tests := []struct {
		name, flag, env, want string
		noted                 bool
	}{
		{name: "an exported KUBECONFIG is ignored", env: ".stateguard/kubeconfig", noted: true},
		{name: "a production KUBECONFIG is ignored", env: "/home/sre/.kube/prod", noted: true},
		{name: "the flag is used", flag: "/tmp/kind", env: "/home/sre/.kube/prod", want: "/tmp/kind"},
		{name: "nothing set starts a local control plane"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, note := chooseCluster(tt.flag, tt.env)
			if got != tt.want || (note != "") != tt.noted {
				t.Errorf("chooseCluster(%q, %q) = %q, %q; want %q, noted %t", tt.flag, tt.env, got, note, tt.want, tt.noted)
			}
		})
	}
}
