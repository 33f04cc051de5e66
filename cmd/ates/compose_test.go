package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile loads docker-compose.yml with compose-go (no Docker engine needed) and
// checks that it brings up aTES as R-OPS-2 describes, with a configuration aTES accepts.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "docker-compose.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: b}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("ates", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	for _, name := range []string{"postgres", "rabbitmq", "mailpit", "gateway", "worker-auth", "worker-tasks", "worker-accounting", "worker-analytics"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	workers := map[string]bool{}
	for name, s := range p.Services {
		if s.Build == nil {
			continue // third-party images
		}
		if _, err := os.Stat(filepath.Join(root, s.Build.Dockerfile)); s.Build.Dockerfile != "" && err != nil {
			t.Errorf("%s: Dockerfile %s: %v", name, s.Build.Dockerfile, err)
		}
		if len(s.Command) == 0 {
			t.Errorf("%s: no command", name)
			continue
		}
		switch s.Command[0] {
		case "gateway":
			if len(s.Ports) == 0 {
				t.Errorf("%s: the gateway publishes no port", name)
			}
		case "worker":
			for _, c := range s.Command[1:] {
				if !slices.Contains(Contexts, c) {
					t.Errorf("%s: unknown context %q", name, c)
				}
				workers[c] = true
			}
		default:
			t.Errorf("%s: command %v is not an ates subcommand", name, s.Command)
		}
		var environ []string
		for k, v := range s.Environment {
			if v != nil {
				environ = append(environ, k+"="+*v)
			}
		}
		cfg, err := LoadConfig(environ)
		if err != nil {
			t.Errorf("%s: aTES refuses its environment: %v", name, err)
			continue
		}
		if cfg.SMTPURL != "smtp://mailpit:1025" {
			t.Errorf("%s: payment emails not wired to Mailpit: %q", name, cfg.SMTPURL)
		}
		if !strings.Contains(cfg.DatabaseURL, "@postgres:5432/") || !strings.Contains(cfg.AMQPURL, "@rabbitmq:5672") {
			t.Errorf("%s: not wired to the compose PostgreSQL and RabbitMQ: %q %q", name, cfg.DatabaseURL, cfg.AMQPURL)
		}
		for _, dep := range []string{"postgres", "rabbitmq", "mailpit"} {
			if _, ok := s.DependsOn[dep]; !ok {
				t.Errorf("%s: does not depend on %s", name, dep)
			}
		}
	}
	for _, c := range Contexts {
		if !workers[c] {
			t.Errorf("no worker runs the %s context", c)
		}
	}
}
