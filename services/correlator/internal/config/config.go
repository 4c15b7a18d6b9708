package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// Config is the correlator's configuration.
type Config struct {
	service.Common
	// ConfigFile is the rules file; empty keeps the default rules.
	ConfigFile string
	// TokensFile holds the API's read tokens, one per line.
	TokensFile string
	// OperatorTokensFile holds the API's operator tokens (they may also
	// read), each followed by its name: the actor of the decisions.
	OperatorTokensFile string
	// Bucket is the JetStream KV bucket of the state.
	Bucket     string
	KVReplicas int
	// Workers is how many events of each stream are handled at once.
	Workers int
	// CacheNamespaces bounds the namespace states kept in memory.
	CacheNamespaces int
	// Consumer prefixes the durable consumer names.
	Consumer string
	Rules    model.Rules
	// RulesFile is the rules file as read (empty for the default rules);
	// RulesVersion its RulesVersion, carried by every decision.
	RulesFile    []byte
	RulesVersion string
	// ReportInterval is the period of the scheduled review-cycle report
	// (0: none).
	ReportInterval time.Duration
}

// RulesVersion is the version of a rules file: sha256:<hex> of its bytes
// (the empty file's for the default rules).
func RulesVersion(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Load parses args (without the program name) and the environment, then
// reads the rules file with readFile. --help prints the flags to stdout and
// returns flag.ErrHelp; other errors are returned, not printed.
func Load(args []string, getenv func(string) string, readFile func(string) ([]byte, error), stdout io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("correlator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := envflag.New(fs, getenv)
	c.Common.Register(s, ":8083")
	s.String(&c.ConfigFile, "config", "CORRELATOR_CONFIG", "", "rules file (YAML or JSON), see config.example.yaml")
	s.String(&c.TokensFile, "api-tokens-file", "API_TOKENS_FILE", "", "file of the API's read tokens, one per line (optionally followed by a name); the /v1 API is off without it")
	s.String(&c.OperatorTokensFile, "api-operator-tokens-file", "API_OPERATOR_TOKENS_FILE", "", "file of the API's operator tokens, each followed by its name (the actor recorded); without it nobody may resolve incidents or dismiss findings")
	s.String(&c.Bucket, "kv-bucket", "KV_BUCKET", "stateguard-correlator", "JetStream KV bucket holding the state")
	s.Int(&c.KVReplicas, "kv-replicas", "KV_REPLICAS", 1, "replicas of the KV bucket (3 in a cluster)")
	s.Int(&c.Workers, "workers", "WORKERS", 512, "events handled at once per stream (they share the group commits of the state and the decision batches)")
	s.Int(&c.CacheNamespaces, "cache-namespaces", "CACHE_NAMESPACES", 16384, "namespace states kept in memory (others are read from KV when needed)")
	s.String(&c.Consumer, "consumer", "CONSUMER", "correlator", "prefix of the durable consumer names")
	s.Duration(&c.ReportInterval, "report-interval", "REPORT_INTERVAL", 7*24*time.Hour, "period of the scheduled review-cycle report, stored in the Object Store and announced by report.generated (0: none)")
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	c.Rules = model.DefaultRules()
	if c.ConfigFile != "" {
		data, err := readFile(c.ConfigFile)
		if err != nil {
			return c, fmt.Errorf("rules file: %w", err)
		}
		if c.Rules, err = ParseRules(data); err != nil {
			return c, fmt.Errorf("rules file %s: %w", c.ConfigFile, err)
		}
		c.RulesFile = data
	}
	c.RulesVersion = RulesVersion(c.RulesFile)
	if c.OperatorTokensFile != "" && c.TokensFile == "" {
		return c, errors.New("--api-operator-tokens-file needs --api-tokens-file: the /v1 API is off without it")
	}
	if err := c.NATS.Validate(); err != nil {
		return c, err
	}
	if err := c.TLS.Validate(); err != nil {
		return c, err
	}
	switch {
	case c.Workers < 1:
		return c, fmt.Errorf("--workers %d < 1", c.Workers)
	case c.CacheNamespaces < 1:
		return c, fmt.Errorf("--cache-namespaces %d < 1", c.CacheNamespaces)
	case c.ReportInterval < 0:
		return c, fmt.Errorf("--report-interval %s < 0", c.ReportInterval)
	case c.KVReplicas < 1:
		return c, fmt.Errorf("--kv-replicas %d < 1", c.KVReplicas)
	case c.Bucket == "":
		return c, errors.New("--kv-bucket is empty")
	}
	return c, nil
}

// File is the rules file. Unset fields keep their defaults.
type File struct {
	Threshold         *string   `json:"threshold"`
	UnknownIsClean    *bool     `json:"unknown_is_clean"`
	KeepKnownGood     *int      `json:"keep_known_good"`
	SecretCWEs        *[]string `json:"secret_cwes"`
	SecretRules       *[]string `json:"secret_rules"`
	SecretTags        *[]string `json:"secret_tags"`
	RotationThreshold *string   `json:"rotation_threshold"`
	RenewalMargin     *string   `json:"renewal_margin"`
	History           *int      `json:"history"`
	// Repositories maps owner/name to the applications that run its code.
	Repositories map[string][]RepositoryTarget `json:"repositories"`
}

// RepositoryTarget is one application of the rules file's repositories.
type RepositoryTarget struct {
	Namespace string `json:"namespace"`
	App       string `json:"app"`
	Category  string `json:"category"`
}

// ParseRules reads a rules file (YAML or JSON) over the default rules.
func ParseRules(data []byte) (model.Rules, error) {
	r := model.DefaultRules()
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return r, err
	}
	var err error
	if f.Threshold != nil {
		if r.Threshold, err = model.ParseSeverity(*f.Threshold); err != nil {
			return r, err
		}
	}
	if f.UnknownIsClean != nil {
		r.UnknownIsClean = *f.UnknownIsClean
	}
	if f.KeepKnownGood != nil {
		r.KeepKnownGood = *f.KeepKnownGood
	}
	if f.SecretCWEs != nil {
		r.SecretCWEs = *f.SecretCWEs
	}
	if f.SecretRules != nil {
		r.SecretRules = *f.SecretRules
	}
	if f.SecretTags != nil {
		r.SecretTags = *f.SecretTags
	}
	if f.RotationThreshold != nil {
		if r.RotationThreshold, err = ParseDuration(*f.RotationThreshold); err != nil {
			return r, fmt.Errorf("rotation_threshold: %w", err)
		}
	}
	if f.RenewalMargin != nil {
		if r.RenewalMargin, err = ParseDuration(*f.RenewalMargin); err != nil {
			return r, fmt.Errorf("renewal_margin: %w", err)
		}
	}
	if f.History != nil {
		r.History = *f.History
	}
	for repo, ts := range f.Repositories {
		norm := model.NormaliseRepository(repo)
		if norm == "" {
			return r, fmt.Errorf("repositories: %q is not owner/name or a repository URL", repo)
		}
		if r.Repositories == nil {
			r.Repositories = map[string][]model.RepoTarget{}
		}
		for _, t := range ts {
			r.Repositories[norm] = append(r.Repositories[norm], model.RepoTarget{Namespace: t.Namespace, App: t.App, Category: t.Category, Source: model.SourceRules})
		}
	}
	return r, r.Validate()
}

// ParseDuration accepts Go durations and whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		// 213504d would wrap around to 25 minutes.
		const day = 24 * time.Hour
		if n > int(math.MaxInt64/day) || n < int(math.MinInt64/day) {
			return 0, fmt.Errorf("duration %q: more days than a duration holds (%d)", s, math.MaxInt64/day)
		}
		return time.Duration(n) * day, nil
	}
	return time.ParseDuration(s)
}
