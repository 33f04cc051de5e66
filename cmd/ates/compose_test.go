package main

import (
	"context"
	"fmt"
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
			// Scaled, a published port would be published twice: the proxy is the way in.
			if len(s.Ports) > 0 {
				t.Errorf("%s: the gateway publishes %v itself; only the proxy may", name, s.Ports)
			}
			if cfg, err := LoadConfig(environOf(s)); err == nil && !strings.HasSuffix(cfg.HTTPAddr, ":8080") {
				t.Errorf("%s: listens on %q, the proxy expects :8080", name, cfg.HTTPAddr)
			}
			if !trustsNetwork(p, s) {
				t.Errorf("%s: ATES_TRUSTED_PROXIES %v is not the compose network's range %v", name,
					s.Environment["ATES_TRUSTED_PROXIES"], networkRanges(p))
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
		cfg, err := LoadConfig(environOf(s))
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
	checkPublishedPorts(t, p)
	checkProxy(t, root, p)
}

// environOf is a service's environment as KEY=value lines.
func environOf(s types.ServiceConfig) []string {
	var environ []string
	for k, v := range s.Environment {
		if v != nil {
			environ = append(environ, k+"="+*v)
		}
	}
	return environ
}

// checkPublishedPorts: no two services publish the same host port, and no service that may be
// scaled (one built from this repository) publishes a fixed one: `docker compose up --scale
// gateway=2` must start (R-OPS-2).
func checkPublishedPorts(t *testing.T, p *types.Project) {
	t.Helper()
	owner := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, ok := owner[key]; ok {
				t.Errorf("host port %s is published by both %s and %s", key, other, name)
			}
			owner[key] = name
			if s.Build != nil {
				t.Errorf("%s: publishes host port %s but may be scaled", name, key)
			}
		}
	}
}

// networkRanges are the subnets of the compose project's networks.
func networkRanges(p *types.Project) []string {
	var out []string
	for _, n := range p.Networks {
		for _, c := range n.Ipam.Config {
			out = append(out, c.Subnet)
		}
	}
	return out
}

// trustsNetwork: the gateway trusts X-Forwarded-For from the compose network, where the proxy
// is, and from nowhere else.
func trustsNetwork(p *types.Project, s types.ServiceConfig) bool {
	v := s.Environment["ATES_TRUSTED_PROXIES"]
	if v == nil {
		return false
	}
	ranges := networkRanges(p)
	for _, r := range strings.Split(*v, ",") {
		if !slices.Contains(ranges, strings.TrimSpace(r)) {
			return false
		}
	}
	return len(ranges) > 0
}

// checkProxy: a reverse proxy from an official image publishes the HTTP port, its configuration
// file is in the repository, and it routes /graphql — WebSocket upgrades included — and
// everything else to the gateway replicas, health-checked through /readyz (R-OPS-2, R-API-2).
func checkProxy(t *testing.T, root string, p *types.Project) {
	t.Helper()
	proxy, ok := p.Services["proxy"]
	if !ok {
		t.Fatal("no proxy service in front of the gateways")
	}
	if !strings.HasPrefix(proxy.Image, "caddy:") {
		t.Errorf("proxy image %q is not the official Caddy image", proxy.Image)
	}
	if len(proxy.Ports) != 1 || proxy.Ports[0].Published != "8080" {
		t.Errorf("proxy publishes %v, want the HTTP port 8080", proxy.Ports)
	}
	if _, ok := proxy.DependsOn["gateway"]; !ok {
		t.Error("proxy does not depend on the gateway")
	}
	var config string
	for _, v := range proxy.Volumes {
		if v.Target == "/etc/caddy/Caddyfile" {
			config = v.Source
		}
	}
	if config == "" {
		t.Fatalf("proxy mounts no Caddyfile: %v", proxy.Volumes)
	}
	if !filepath.IsAbs(config) {
		config = filepath.Join(root, config)
	}
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatalf("the proxy's configuration: %v", err)
	}
	caddy := parseCaddyfile(string(b))

	// The replicas a scaled gateway service gets, by container name.
	upstreams := caddy.snippet("gateways").values("to")
	if len(upstreams) < 2 {
		t.Errorf("the gateways snippet names %v, want the replicas of a scaled gateway", upstreams)
	}
	for i, u := range upstreams {
		if want := fmt.Sprintf("%s-gateway-%d:8080", p.Name, i+1); u != want {
			t.Errorf("upstream %d is %q, want %q (the gateway service's replica)", i+1, u, want)
		}
	}
	if got := caddy.snippet("gateways").values("health_uri"); !slices.Equal(got, []string{"/readyz"}) {
		t.Errorf("health_uri %v, want /readyz", got)
	}

	ws := caddy.block("@websocket")
	if !slices.Contains(ws, "path /graphql") || !slices.Contains(ws, "header Upgrade websocket") {
		t.Errorf("no matcher of WebSocket upgrades of /graphql: %q", ws)
	}
	routes := caddy.block(":8080")
	for _, want := range []string{"reverse_proxy @websocket {", "reverse_proxy {"} {
		if !slices.Contains(routes, want) {
			t.Errorf("the site does not route %q", want)
		}
	}
	if n := strings.Count(strings.Join(routes, "\n"), "import gateways"); n != 2 {
		t.Errorf("%d routes proxy to the gateways, want 2 (WebSockets and the rest)", n)
	}
	for _, line := range routes {
		if strings.Contains(line, "-Upgrade") || strings.Contains(line, "-Connection") {
			t.Errorf("the proxy strips the upgrade: %q", line)
		}
	}
}

// caddyfile is a Caddyfile's lines (comments and blank lines dropped, trimmed), enough to read
// its blocks.
type caddyfile []string

func parseCaddyfile(src string) caddyfile {
	var out caddyfile
	for _, line := range strings.Split(src, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], "`") {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// block returns the lines inside the block whose opening line starts with head.
func (c caddyfile) block(head string) caddyfile {
	for i, line := range c {
		if !strings.HasPrefix(line, head) || !strings.HasSuffix(line, "{") {
			continue
		}
		depth := 1
		for j := i + 1; j < len(c); j++ {
			depth += strings.Count(c[j], "{") - strings.Count(c[j], "}")
			if depth == 0 {
				return c[i+1 : j]
			}
		}
	}
	return nil
}

// snippet returns the lines of the named snippet, (name) { … }.
func (c caddyfile) snippet(name string) caddyfile { return c.block("(" + name + ")") }

// values returns the arguments of the directive's lines.
func (c caddyfile) values(directive string) []string {
	var out []string
	for _, line := range c {
		if f := strings.Fields(line); len(f) > 0 && f[0] == directive {
			out = append(out, f[1:]...)
		}
	}
	return out
}
