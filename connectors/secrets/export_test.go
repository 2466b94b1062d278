package secrets

import "time"

// SetClock replaces the client's clock so that tests can move a token
// through its lifetime without waiting. Call it before using the client.
func SetClock(c *Client, now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// TokenState exposes the AppRole token lifecycle: the login generation
// (incremented by every login) and when the token is renewed and expires.
func TokenState(c *Client) (gen uint64, renewAt, expiresAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.renewAt, c.expiresAt
}
