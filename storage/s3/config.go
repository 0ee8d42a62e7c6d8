package s3

import (
	"errors"
	"flag"
	"strings"
	"time"

	"github.com/grafana/dskit/flagext"
)

// Config is the S3 bucket configuration, with Tempo's key names.
type Config struct {
	Bucket    string         `yaml:"bucket"`
	Endpoint  string         `yaml:"endpoint"`
	Region    string         `yaml:"region"`
	AccessKey string         `yaml:"access_key"`
	SecretKey flagext.Secret `yaml:"secret_key"`
	Insecure  bool           `yaml:"insecure"`
	Timeout   time.Duration  `yaml:"timeout"`
}

// RegisterFlagsAndApplyDefaults registers the flags under prefix and sets defaults.
func (cfg *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.StringVar(&cfg.Bucket, prefix+".bucket", "", "S3 bucket name. It must exist: Vivace never creates it.")
	f.StringVar(&cfg.Endpoint, prefix+".endpoint", "", "S3 endpoint as host[:port], without a scheme, e.g. s3.eu-west-1.amazonaws.com or minio:9000.")
	f.StringVar(&cfg.Region, prefix+".region", "", "S3 region. Set it to skip the GetBucketLocation call, which needs the s3:GetBucketLocation permission.")
	f.StringVar(&cfg.AccessKey, prefix+".access-key", "", "S3 access key. If empty, credentials come from the AWS_* or MINIO_* environment or the instance's IAM role.")
	f.Var(&cfg.SecretKey, prefix+".secret-key", "S3 secret key.")
	f.BoolVar(&cfg.Insecure, prefix+".insecure", false, "Use plain HTTP instead of HTTPS.")
	f.DurationVar(&cfg.Timeout, prefix+".timeout", 30*time.Second, "Deadline for one S3 call, including reading the response body, when the caller set none.")
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Bucket == "" {
		errs = append(errs, errors.New("s3: bucket is required"))
	}
	if cfg.Endpoint == "" {
		errs = append(errs, errors.New("s3: endpoint is required"))
	}
	if strings.Contains(cfg.Endpoint, "://") {
		errs = append(errs, errors.New("s3: endpoint must be host[:port] without a scheme; use insecure for http"))
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey.String() == "") {
		errs = append(errs, errors.New("s3: access_key and secret_key must be set together"))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, errors.New("s3: timeout must be positive"))
	}
	return errors.Join(errs...)
}
