package secrets

import (
	"errors"
	"fmt"
	"strings"
)

// JoinerPath is the logical KV path of a joiner's secret called name, e.g.
// JoinerPath("200", "initial-credential") = "joinery/joiners/200/initial-credential".
// joinerKey and name must each be a single path segment; operations given a
// path built from an invalid segment refuse it with TypeInvalidRequest.
func (c *Client) JoinerPath(joinerKey, name string) string {
	return c.cfg.PathPrefix + "/" + joinerKey + "/" + name
}

// checkSegment accepts one path segment of letters, digits, '.', '_' and '-'.
// The allow-list keeps a joiner key from reaching another joiner's secrets
// ("200/../201"), from addressing KV's own control paths, and from smuggling
// in characters that Vault or a policy glob would interpret.
func checkSegment(s string) error {
	if s == "" {
		return errors.New("empty path segment")
	}
	if s == "." || s == ".." {
		return fmt.Errorf("path segment %q is not allowed", s)
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("path segment %q contains %q; only letters, digits, '.', '_' and '-' are allowed", s, r)
		}
	}
	return nil
}

// checkPath accepts a relative path of valid segments separated by '/'.
func checkPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for _, seg := range strings.Split(p, "/") {
		if err := checkSegment(seg); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
	}
	return nil
}

// kvPath returns the KV v2 API path for one of the engine's verbs
// ("data", "metadata", "destroy") on a logical path.
func (c *Client) kvPath(verb, logical string) string {
	return c.cfg.KVMount + "/" + verb + "/" + logical
}
