package envflag

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Set wraps a FlagSet and the function that reads the environment, so tests
// never touch the process environment.
type Set struct {
	FS     *flag.FlagSet
	Getenv func(string) string
	errs   []error
}

// New returns a Set over fs reading getenv.
func New(fs *flag.FlagSet, getenv func(string) string) *Set {
	return &Set{FS: fs, Getenv: getenv}
}

func (s *Set) usage(usage, env string) string {
	if env == "" {
		return usage
	}
	return fmt.Sprintf("%s (env %s)", usage, env)
}

// String defines a string flag.
func (s *Set) String(p *string, name, env, def, usage string) {
	if v := s.env(env); v != "" {
		def = v
	}
	s.FS.StringVar(p, name, def, s.usage(usage, env))
}

// Duration defines a duration flag.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v := s.env(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = d
		}
	}
	s.FS.DurationVar(p, name, def, s.usage(usage, env))
}

// Int defines an int flag.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	if v := s.env(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = n
		}
	}
	s.FS.IntVar(p, name, def, s.usage(usage, env))
}

// Int64 defines an int64 flag.
func (s *Set) Int64(p *int64, name, env string, def int64, usage string) {
	if v := s.env(env); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = n
		}
	}
	s.FS.Int64Var(p, name, def, s.usage(usage, env))
}

// Bool defines a bool flag.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	if v := s.env(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = b
		}
	}
	s.FS.BoolVar(p, name, def, s.usage(usage, env))
}

// Strings defines a repeatable flag; the environment variable holds a
// comma-separated list.
func (s *Set) Strings(p *[]string, name, env string, def []string, usage string) {
	if v := s.env(env); v != "" {
		def = splitList(v)
	}
	*p = append([]string(nil), def...)
	s.FS.Var(&listValue{p: p, def: true}, name, s.usage(usage, env))
}

// Parse parses args and reports bad environment values too.
func (s *Set) Parse(args []string) error {
	if len(s.errs) > 0 {
		return fmt.Errorf("environment: %w", s.errs[0])
	}
	return s.FS.Parse(args)
}

func (s *Set) env(name string) string {
	if name == "" || s.Getenv == nil {
		return ""
	}
	return strings.TrimSpace(s.Getenv(name))
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type listValue struct {
	p   *[]string
	def bool
}

func (l *listValue) String() string {
	if l == nil || l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *listValue) Set(v string) error {
	if l.def { // the first flag on the command line replaces the default
		*l.p, l.def = nil, false
	}
	*l.p = append(*l.p, splitList(v)...)
	return nil
}
