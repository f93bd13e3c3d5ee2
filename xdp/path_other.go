//go:build !linux

package xdp

import "errors"

// Open fails: AF_XDP is Linux's.
func Open(Config) (*Path, error) { return nil, errors.New("af_xdp is only on linux") }

// Path is never opened here; its methods exist so that callers build everywhere.
type Path struct{}

func (*Path) Queues() int        { return 0 }
func (*Path) Mode() string       { return "" }
func (*Path) Interface() string  { return "" }
func (*Path) Dropped() uint64    { return 0 }
func (*Path) Serve(int, Handler) {}
func (*Path) Wake()              {}
func (*Path) Close() error       { return nil }
