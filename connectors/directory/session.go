package directory

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// do runs fn on a fresh, bound connection, all within the per-call timeout,
// and classifies whatever fails.
//
// A connection per call keeps the Client free of shared state (safe for
// concurrent use, nothing to repair after a server restart); joiner volumes
// make the extra dial and bind negligible.
func (c *Client) do(ctx context.Context, op string, fn func(conn *ldap.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return classifyCtx(ctx, op, err) // cancelled before we started: send nothing
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return classifyCtx(ctx, op, err)
	}
	defer func() { _ = conn.Close() }()
	// go-ldap requests do not take a context: closing the connection when
	// ctx ends is what makes cancellation and the deadline interrupt a
	// request in flight.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	return classifyCtx(ctx, op, fn(conn))
}

// connect dials, upgrades to TLS when configured and binds.
func (c *Client) connect(ctx context.Context) (*ldap.Conn, error) {
	deadline, _ := ctx.Deadline() // always set by do
	dialer := &net.Dialer{Deadline: deadline}
	conn, err := ldap.DialURL(c.cfg.URL, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(c.tls))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.cfg.URL, err)
	}
	// Each request waits at most until the call's deadline.
	conn.SetTimeout(time.Until(deadline))
	if c.cfg.StartTLS {
		if err := conn.StartTLS(c.tls); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("StartTLS with %s: %w", c.cfg.URL, err)
		}
	}
	if err := conn.Bind(c.cfg.BindDN, c.cfg.BindPassword); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("bind as %s: %w", c.cfg.BindDN, err)
	}
	return conn, nil
}

// search runs a search without size limit beyond the server's own.
func search(conn *ldap.Conn, base string, scope int, filter string, attrs ...string) ([]*ldap.Entry, error) {
	res, err := conn.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
	if err != nil {
		return nil, fmt.Errorf("search %s for %s: %w", base, filter, err)
	}
	return res.Entries, nil
}
