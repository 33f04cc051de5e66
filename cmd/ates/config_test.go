package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.DataDir != "./data" || c.Timezone != "UTC" || c.TokenTTL != time.Hour {
		t.Errorf("defaults = %+v", c)
	}
	if c.CloseSchedule != "0 0 * * *" {
		t.Errorf("close schedule = %q, want midnight", c.CloseSchedule)
	}
	if c.AMQPBatchSize != 32 {
		t.Errorf("AMQP batch size = %d, want 32", c.AMQPBatchSize)
	}
	if c.DatabaseURL != "" || c.AMQPURL != "" || c.SMTPURL != "" || c.Dev {
		t.Errorf("the embedded default must need no server: %+v", c)
	}
	if c.Location() != time.UTC {
		t.Errorf("location = %v", c.Location())
	}
}

func TestLoadConfigReadsEveryVariable(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig([]string{
		"ATES_HTTP_ADDR=127.0.0.1:9000", "ATES_DATA_DIR=/var/ates", "ATES_TIMEZONE=Europe/Berlin",
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=secret-beak",
		"ATES_DATABASE_URL=postgres://u@db:5432/ates", "ATES_TASKS_DATABASE_URL=postgres://u@db2:5432/t",
		"ATES_AMQP_URL=amqp://g:g@mq:5672/ates", "ATES_SMTP_URL=smtp://mail:1025", "ATES_MAIL_FROM=x@y.z",
		"ATES_CLOSE_SCHEDULE=0 0 * * *", "ATES_DEV=true", "ATES_TOKEN_TTL=30m",
		"ATES_ALLOWED_ORIGINS=app.uberpopug.com,localhost:*",
		"ATES_TRUSTED_PROXIES=10.0.0.0/8,192.168.1.1", "ATES_METRICS_ADDR=127.0.0.1:9090", "ATES_SESSION_TTL=168h",
		"ATES_AMQP_BATCH_SIZE=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:9000" || c.DataDir != "/var/ates" || c.Location().String() != "Europe/Berlin" ||
		c.AdminUsername != "boss" || c.AdminPassword != "secret-beak" || c.DatabaseURL != "postgres://u@db:5432/ates" ||
		c.AMQPURL != "amqp://g:g@mq:5672/ates" || c.SMTPURL != "smtp://mail:1025" || c.MailFrom != "x@y.z" ||
		c.CloseSchedule != "0 0 * * *" || !c.Dev || c.TokenTTL != 30*time.Minute ||
		!slices.Equal(c.AllowedOrigins, []string{"app.uberpopug.com", "localhost:*"}) ||
		!slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8", "192.168.1.1"}) || c.MetricsAddr != "127.0.0.1:9090" || c.SessionTTL != 168*time.Hour || c.AMQPBatchSize != 1 {
		t.Errorf("config = %+v", c)
	}
	if got := c.databaseOverrides(); len(got) != 1 || got["tasks"] != "postgres://u@db2:5432/t" {
		t.Errorf("overrides = %v", got)
	}
}

func TestLoadConfigRefusesBadValues(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"ATES_TIMEZONE=Mars/Olympus":       "ATES_TIMEZONE",
		"ATES_DATABASE_URL=mysql://x/y":    "ATES_DATABASE_URL",
		"ATES_DATABASE_URL=postgres://x/":  "ATES_DATABASE_URL",
		"ATES_AUTH_DATABASE_URL=sqlite://": "ATES_AUTH_DATABASE_URL",
		"ATES_AMQP_URL=http://mq":          "ATES_AMQP_URL",
		"ATES_SMTP_URL=mail.example.com":   "ATES_SMTP_URL",
		"ATES_TOKEN_TTL=9s":                "ATES_TOKEN_TTL",
		"ATES_TOKEN_TTL=25h":               "ATES_TOKEN_TTL",
		"ATES_TRUSTED_PROXIES=10.0.0.0/33": "ATES_TRUSTED_PROXIES",
		"ATES_TRUSTED_PROXIES=proxy":       "ATES_TRUSTED_PROXIES",
		"ATES_TOKEN_TTL=soon":              "ATES_TOKEN_TTL",
		"ATES_SESSION_TTL=30m":             "ATES_SESSION_TTL",
		"ATES_PASSWORD_HASHES=-1":          "ATES_PASSWORD_HASHES",
		"ATES_AMQP_BATCH_SIZE=0":           "ATES_AMQP_BATCH_SIZE",
		"ATES_SESSION_TTL=9000h":           "ATES_SESSION_TTL",
		"ATES_LOG_LEVEL=loud":              "ATES_LOG_LEVEL",
		"ATES_DEV=maybe":                   "ATES_DEV",
		"ATES_CLOSE_SCHEDULE=at midnight":  "ATES_CLOSE_SCHEDULE",
		"ATES_CLOSE_SCHEDULE=0 0 * *":      "ATES_CLOSE_SCHEDULE",
		"ATES_MAIL_FROM=nobody":            "ATES_MAIL_FROM",
		"ATES_PPROF=1":                     "ATES_PPROF",
	}
	for kv, want := range cases {
		_, err := LoadConfig([]string{kv})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadConfig(%s) error = %v, want one naming %s", kv, err, want)
		}
	}
}
