package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// Config is sastingest's configuration.
type Config struct {
	service.Common
	TokensFile         string
	WebhookSecretsFile string
	MaxBodyBytes       int64
	MaxWebhookBody     int64
	MaxGitHubBody      int64
	MaxConcurrent      int
	BodyReadTimeout    time.Duration
	MaxUncompressed    int64
	SpoolDir           string
	StoreTimeout       time.Duration
	ReplayTTL          time.Duration
	PublicURL          string
}

// Parse reads the flags in args, with defaults from getenv.
func Parse(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("sastingest", flag.ContinueOnError)
	fs.SetOutput(out)
	s := envflag.New(fs, getenv)
	c := &Config{}
	c.Common.Register(s, ":8080")
	s.String(&c.TokensFile, "tokens-file", "TOKENS_FILE", "", "bearer tokens: one per line, optionally followed by repository patterns (org/*,org/repo); re-read on change")
	s.String(&c.WebhookSecretsFile, "webhook-secrets-file", "WEBHOOK_SECRETS_FILE", "", "webhook secrets: \"provider secret\" per line; re-read on change")
	s.Int64(&c.MaxBodyBytes, "max-body-bytes", "MAX_BODY_BYTES", 1<<30, "largest request body, compressed as sent")
	s.Int64(&c.MaxWebhookBody, "max-webhook-body-bytes", "MAX_WEBHOOK_BODY_BYTES", 128<<20, "largest webhook body, as sent: it is spooled to disk before its signature can be checked")
	s.Int64(&c.MaxGitHubBody, "max-github-body-bytes", "MAX_GITHUB_BODY_BYTES", 256<<20, "largest GitHub-style upload request (JSON with the base64 gzip log), held in memory")
	s.Int(&c.MaxConcurrent, "max-concurrent-uploads", "MAX_CONCURRENT_UPLOADS", 8, "uploads read, parsed or stored at once; one more is answered 429 with Retry-After")
	s.Duration(&c.BodyReadTimeout, "body-read-timeout", "BODY_READ_TIMEOUT", 10*time.Minute, "time an upload's body may take to arrive; a slower body is cut off with 408")
	s.Int64(&c.MaxUncompressed, "max-uncompressed-bytes", "MAX_UNCOMPRESSED_BYTES", 4<<30, "largest SARIF log once inflated")
	s.String(&c.SpoolDir, "spool-dir", "SPOOL_DIR", "", "directory for the gzip copy of a log while it is parsed (default: the system temp dir)")
	s.Duration(&c.StoreTimeout, "store-timeout", "STORE_TIMEOUT", 30*time.Second, "bound on storing and publishing one parsed upload")
	s.Duration(&c.ReplayTTL, "replay-ttl", "REPLAY_TTL", 72*time.Hour, "how long webhook delivery ids are remembered")
	s.String(&c.PublicURL, "public-url", "PUBLIC_URL", "", "base URL of this service in status links (default: from the request)")
	if err := s.Parse(args); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

// Validate reports inconsistent settings.
func (c *Config) Validate() error {
	var errs []error
	if c.TokensFile == "" && c.WebhookSecretsFile == "" {
		errs = append(errs, errors.New("--tokens-file or --webhook-secrets-file is required: every write needs a token or a signature"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("--max-body-bytes %d must be positive", c.MaxBodyBytes))
	}
	if c.MaxWebhookBody <= 0 {
		errs = append(errs, fmt.Errorf("--max-webhook-body-bytes %d must be positive", c.MaxWebhookBody))
	}
	if c.MaxGitHubBody <= 0 {
		errs = append(errs, fmt.Errorf("--max-github-body-bytes %d must be positive", c.MaxGitHubBody))
	}
	if c.MaxConcurrent <= 0 {
		errs = append(errs, fmt.Errorf("--max-concurrent-uploads %d must be positive", c.MaxConcurrent))
	}
	if c.BodyReadTimeout < 0 {
		errs = append(errs, fmt.Errorf("--body-read-timeout %s must not be negative", c.BodyReadTimeout))
	}
	if c.MaxUncompressed <= 0 {
		errs = append(errs, fmt.Errorf("--max-uncompressed-bytes %d must be positive", c.MaxUncompressed))
	}
	if c.ReplayTTL < 10*time.Minute {
		errs = append(errs, fmt.Errorf("--replay-ttl %s must cover the 5-minute timestamp tolerance twice", c.ReplayTTL))
	}
	if err := c.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
