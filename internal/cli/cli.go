// Package cli holds the small pieces every glbdns binary shares: a logger built from a
// -log-level flag, environment defaults for flags, and repeatable string flags.
package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// NewLogger returns a text slog.Logger on w at the named level (debug, info, warn, error).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// Env returns the environment variable name if set and non-empty, else def. Flags use it as
// their default so that GLBDNS_LISTEN=... works like -listen ....
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Strings is a repeatable string flag (-health A -health B); a comma-separated environment
// default seeds it.
type Strings []string

// String implements flag.Value.
func (s *Strings) String() string { return strings.Join(*s, ",") }

// Set implements flag.Value: each use of the flag appends one value.
func (s *Strings) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// FromEnv seeds s from a comma-separated environment variable.
func (s *Strings) FromEnv(name string) {
	for _, v := range strings.Split(os.Getenv(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			*s = append(*s, v)
		}
	}
}
