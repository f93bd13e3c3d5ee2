package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/glbdns/glbdns/api"
)

// adminClient is what the subcommands that talk to a running glbdns share: its admin URL,
// the bearer token and a timeout, from flags and the environment.
type adminClient struct {
	base, tokenFile *string
	timeout         *time.Duration
	token           string
}

// adminFlags registers -admin, -admin-token-file and -timeout on fs.
func adminFlags(fs *flag.FlagSet) *adminClient {
	def := os.Getenv("GLBDNS_ADMIN_URL")
	if def == "" {
		def = "http://127.0.0.1:8053"
	}
	return &adminClient{
		base:      fs.String("admin", def, "admin `URL` of the glbdns to ask (env GLBDNS_ADMIN_URL)"),
		timeout:   fs.Duration("timeout", 5*time.Second, "request timeout"),
		tokenFile: fs.String("admin-token-file", "", "`file` holding the admin token, which reads need when the node has one and writes always (else env GLBDNS_ADMIN_TOKEN)"),
	}
}

// init reads the token and normalises the URL, after the flags are parsed.
func (c *adminClient) init() error {
	c.token = os.Getenv("GLBDNS_ADMIN_TOKEN")
	if *c.tokenFile != "" {
		b, err := os.ReadFile(*c.tokenFile)
		if err != nil {
			return err
		}
		c.token = strings.TrimSpace(string(b))
	}
	u := strings.TrimRight(*c.base, "/")
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	*c.base = u
	return nil
}

// do sends method path with body (nil for none) as JSON and decodes a 2xx answer into
// out (nil to ignore it). Any other status is an error carrying the API's reason.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := *c.base + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			if e.Field != "" {
				return fmt.Errorf("%s %s: %s: %s (field %s)", method, u, resp.Status, e.Error, e.Field)
			}
			return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s answered %s", method, u, resp.Status)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s: %w", u, err)
		}
	}
	return nil
}

// parseInterspersed parses fs from args, flags before, between and after the positional
// arguments ("drain POOL MEMBER -for 10m"), which flag.Parse alone stops at, and returns
// the positional ones. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}
