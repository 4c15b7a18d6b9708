package envflag

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type settings struct {
	URL    string
	Wait   time.Duration
	N      int
	Big    int64
	On     bool
	Images []string
}

func parse(t *testing.T, env map[string]string, args ...string) (settings, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := New(fs, func(k string) string { return env[k] })
	var v settings
	s.String(&v.URL, "url", "URL", "nats://default", "")
	s.Duration(&v.Wait, "wait", "WAIT", time.Second, "")
	s.Int(&v.N, "n", "N", 1, "")
	s.Int64(&v.Big, "big", "BIG", 2, "")
	s.Bool(&v.On, "on", "ON", false, "")
	s.Strings(&v.Images, "image", "IMAGES", []string{"a"}, "")
	return v, s.Parse(args)
}

func TestPrecedenceFlagOverEnvOverDefault(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want settings
	}{
		"defaults": {nil, nil, settings{"nats://default", time.Second, 1, 2, false, []string{"a"}}},
		"environment": {map[string]string{"URL": "nats://env", "WAIT": "5s", "N": "7", "BIG": "9", "ON": "true", "IMAGES": "x, y"}, nil,
			settings{"nats://env", 5 * time.Second, 7, 9, true, []string{"x", "y"}}},
		"flags win": {map[string]string{"URL": "nats://env", "N": "7", "IMAGES": "x"}, []string{"--url", "nats://flag", "--n", "3", "--image", "p", "--image", "q,r"},
			settings{"nats://flag", time.Second, 3, 2, false, []string{"p", "q", "r"}}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parse(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadEnvironmentValuesAreErrors(t *testing.T) {
	for _, env := range []map[string]string{{"WAIT": "soon"}, {"N": "many"}, {"ON": "perhaps"}, {"BIG": "x"}} {
		if _, err := parse(t, env); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
}
