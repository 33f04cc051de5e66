package main

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/robfig/cron/v3"

	"github.com/uberpopug/ates/graph"
	atesmail "github.com/uberpopug/ates/services/mail"
	"github.com/uberpopug/ates/services/storage"
)

// Config is every setting of aTES, read from ATES_* environment variables (R-OPS-3). Unset
// means the embedded default: SQLite under DataDir, the in-process bus, mail to a local
// mailbox folder. The README documents each variable.
type Config struct {
	// HTTPAddr is where the gateway listens.
	HTTPAddr string `env:"ATES_HTTP_ADDR" envDefault:":8080"`
	// DataDir holds the SQLite databases (and, later, the mailbox) of the embedded default.
	DataDir string `env:"ATES_DATA_DIR" envDefault:"./data"`
	// Timezone is the business-day timezone (R-ACC-7).
	Timezone string `env:"ATES_TIMEZONE" envDefault:"UTC"`
	// AdminUsername and AdminPassword bootstrap the first admin (R-AUTH-3).
	AdminUsername string `env:"ATES_ADMIN_USERNAME"`
	AdminPassword string `env:"ATES_ADMIN_PASSWORD"`
	// DatabaseURL is postgres://…/NAME; each context uses NAME_<context> on that server.
	DatabaseURL string `env:"ATES_DATABASE_URL"`
	// Per-context database URL overrides.
	AuthDatabaseURL       string `env:"ATES_AUTH_DATABASE_URL"`
	TasksDatabaseURL      string `env:"ATES_TASKS_DATABASE_URL"`
	AccountingDatabaseURL string `env:"ATES_ACCOUNTING_DATABASE_URL"`
	AnalyticsDatabaseURL  string `env:"ATES_ANALYTICS_DATABASE_URL"`
	// AMQPURL selects RabbitMQ as the event transport.
	AMQPURL string `env:"ATES_AMQP_URL"`
	// AMQPExchange is the topic exchange events are published to.
	AMQPExchange string `env:"ATES_AMQP_EXCHANGE" envDefault:"ates.events"`
	// AMQPBatchSize is how many events of one name published together travel as one AMQP
	// message, a CloudEvents batch; 1 sends every event alone, as application/json, which
	// consumers of every version read (the first step of the rollout from packs,
	// docs/events.md).
	AMQPBatchSize int `env:"ATES_AMQP_BATCH_SIZE" envDefault:"32"`
	// SMTPURL sends payment emails through that server; unset, they go to DataDir/mailbox.
	SMTPURL  string `env:"ATES_SMTP_URL"`
	MailFrom string `env:"ATES_MAIL_FROM" envDefault:"aTES <ates@uberpopug.local>"`
	// CloseSchedule is the cron expression (minute hour day month weekday) of the end-of-day
	// close in ATES_TIMEZONE (R-ACC-8).
	CloseSchedule string `env:"ATES_CLOSE_SCHEDULE" envDefault:"0 0 * * *"`
	// Dev allows introspection for everyone (R-API-3).
	Dev bool `env:"ATES_DEV"`
	// TokenTTL is the access token lifetime (R-AUTH-4).
	TokenTTL time.Duration `env:"ATES_TOKEN_TTL" envDefault:"1h"`
	// PasswordHashes bounds the beak-print hashes computed at once (R-SEC-2); 0 means twice the
	// number of CPUs.
	PasswordHashes int `env:"ATES_PASSWORD_HASHES"`
	// SessionTTL is the refresh cookie's lifetime, renewed by every refresh (R-SESS-1).
	SessionTTL time.Duration `env:"ATES_SESSION_TTL" envDefault:"720h"`
	// AllowedOrigins are host patterns of pages on other origins that may call the gateway
	// (CORS and WebSockets); same origin is always allowed.
	AllowedOrigins []string `env:"ATES_ALLOWED_ORIGINS" envSeparator:","`
	// TrustedProxies are the addresses or networks (CIDR) of reverse proxies whose
	// X-Forwarded-For names the client.
	TrustedProxies []string `env:"ATES_TRUSTED_PROXIES" envSeparator:","`
	// MetricsAddr serves /metrics on a listener of its own, and not on HTTPAddr (R-SEC-8).
	MetricsAddr string `env:"ATES_METRICS_ADDR"`
	// Pprof serves Go's profiles (net/http/pprof, /debug/pprof/) on the metrics listener, for
	// measurements (cmd/atesbench); it needs MetricsAddr, so profiles are never public.
	Pprof bool `env:"ATES_PPROF"`
	// LogLevel is debug, info, warn or error; LogFormat is json or text.
	LogLevel  string `env:"ATES_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"ATES_LOG_FORMAT" envDefault:"text"`
	// ShutdownTimeout bounds the graceful shutdown (R-OPS-5).
	ShutdownTimeout time.Duration `env:"ATES_SHUTDOWN_TIMEOUT" envDefault:"20s"`

	location *time.Location
}

// LoadConfig reads the configuration from environ (os.Environ() in production) and validates it.
func LoadConfig(environ []string) (Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars}); err != nil {
		return Config{}, explainParseError(err)
	}
	return c, c.validate()
}

// explainParseError names the variable whose value could not be parsed.
func explainParseError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("configuration: %w", err)
	}
	var problems []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
				problems = append(problems, fmt.Errorf("%s: %w", f.Tag.Get("env"), pe.Err))
				continue
			}
		}
		problems = append(problems, e)
	}
	return fmt.Errorf("configuration: %w", errors.Join(problems...))
}

func (c *Config) validate() error {
	var problems []error
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		problems = append(problems, fmt.Errorf("ATES_TIMEZONE %q is not a timezone name like Europe/Berlin", c.Timezone))
	}
	c.location = loc
	for name, u := range map[string]string{
		"ATES_DATABASE_URL": c.DatabaseURL, "ATES_AUTH_DATABASE_URL": c.AuthDatabaseURL,
		"ATES_TASKS_DATABASE_URL": c.TasksDatabaseURL, "ATES_ACCOUNTING_DATABASE_URL": c.AccountingDatabaseURL,
		"ATES_ANALYTICS_DATABASE_URL": c.AnalyticsDatabaseURL,
	} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") || strings.Trim(p.Path, "/") == "" {
			problems = append(problems, fmt.Errorf("%s must be postgres://user@host:port/NAME", name))
		}
	}
	if c.AMQPURL != "" {
		if p, err := url.Parse(c.AMQPURL); err != nil || (p.Scheme != "amqp" && p.Scheme != "amqps") {
			problems = append(problems, errors.New("ATES_AMQP_URL must be amqp://user:pass@host:port/vhost"))
		}
	}
	if c.SMTPURL != "" {
		// Parsed as the mailer will (port, tls mode): a URL the worker cannot use would otherwise
		// stop its end-of-day duties long after the start (R-ACC-8).
		if p, err := url.Parse(c.SMTPURL); err != nil || (p.Scheme != "smtp" && p.Scheme != "smtps") || p.Host == "" {
			problems = append(problems, errors.New("ATES_SMTP_URL must be smtp://[user:pass@]host:port"))
		} else if _, err := atesmail.NewSMTP(c.SMTPURL, c.MailFrom); err != nil {
			problems = append(problems, fmt.Errorf("ATES_SMTP_URL: %w", err))
		}
	}
	if _, err := cron.ParseStandard(c.CloseSchedule); err != nil {
		problems = append(problems, fmt.Errorf("ATES_CLOSE_SCHEDULE %q is not a cron expression like \"0 0 * * *\": %v", c.CloseSchedule, err))
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		problems = append(problems, fmt.Errorf("ATES_MAIL_FROM %q is not an address like \"aTES <ates@example.com>\"", c.MailFrom))
	}
	if c.TokenTTL < 10*time.Second || c.TokenTTL > 24*time.Hour {
		problems = append(problems, errors.New("ATES_TOKEN_TTL must be between 10s and 24h"))
	}
	if c.AMQPBatchSize < 1 || c.AMQPBatchSize > 1000 {
		problems = append(problems, errors.New("ATES_AMQP_BATCH_SIZE must be between 1 and 1000"))
	}
	if c.PasswordHashes < 0 || c.PasswordHashes > 256 {
		problems = append(problems, errors.New("ATES_PASSWORD_HASHES must be between 1 and 256 (0 or unset: twice the CPUs)"))
	}
	if c.SessionTTL < c.TokenTTL || c.SessionTTL > 366*24*time.Hour {
		problems = append(problems, errors.New("ATES_SESSION_TTL must be at least ATES_TOKEN_TTL and at most a year (366 days)"))
	}
	if _, err := graph.ParseTrustedProxies(c.TrustedProxies); err != nil {
		problems = append(problems, fmt.Errorf("ATES_TRUSTED_PROXIES must list addresses or networks like 10.0.0.0/8: %v", err))
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.HTTPAddr && !strings.HasSuffix(c.HTTPAddr, ":0") {
		problems = append(problems, errors.New("ATES_METRICS_ADDR must differ from ATES_HTTP_ADDR"))
	}
	if c.Pprof && c.MetricsAddr == "" {
		problems = append(problems, errors.New("ATES_PPROF needs ATES_METRICS_ADDR: profiles are served on the metrics listener only"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		problems = append(problems, errors.New("ATES_LOG_LEVEL must be debug, info, warn or error"))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		problems = append(problems, errors.New("ATES_LOG_FORMAT must be json or text"))
	}
	return errors.Join(problems...)
}

// Location is the business-day timezone.
func (c Config) Location() *time.Location { return c.location }

// storageConfig says where the contexts' databases live.
func (c Config) storageConfig() storage.Config {
	return storage.Config{DataDir: c.DataDir, DatabaseURL: c.DatabaseURL, Overrides: c.databaseOverrides()}
}

// databaseOverrides maps context names to their own database URLs.
func (c Config) databaseOverrides() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{
		"auth": c.AuthDatabaseURL, "tasks": c.TasksDatabaseURL,
		"accounting": c.AccountingDatabaseURL, "analytics": c.AnalyticsDatabaseURL,
	} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}
