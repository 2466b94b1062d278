// Package pseudonym turns directory usernames into the keys Joinery's
// search attributes carry.
//
// Search attributes are indexed by the Temporal server in clear (the payload
// codec cannot seal them), and anyone with read access to the namespace sees
// them in the Web UI and in visibility queries. A username is personal data
// (first.last), so JoinerManager, JoinerDeciders and JoinerDecidedBy hold a
// keyed pseudonym instead: HMAC-SHA256 under a key only Joinery's own
// processes hold (JOINERY_PSEUDONYM_KEY). Without the key a pseudonym neither
// reveals the username nor can be confirmed by guessing usernames (an
// unkeyed hash could: usernames are predictable). With it, the inbox finds
// "waiting for me" for the person who signed in, and `starter list
// --manager X` translates X.
//
// The pseudonym is deterministic (one person, one value, so equality
// queries work) and is computed outside workflow code: by an activity for
// the joiner, by the inbox and the CLI for their queries.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Prefix starts every pseudonym. It names the scheme (so a later one can be
// told apart) and contains '~', which no directory username Joinery plans or
// accepts contains, so a pseudonym can never equal someone's username.
const Prefix = "p1~"

// MinKeyLen is the shortest key accepted, in bytes: HMAC-SHA256's strength
// against guessing needs a key at least as long as its output.
const MinKeyLen = 32

// domain separates this use of the key from any other.
const domain = "joinery/search-attribute/username/v1\x00"

var shape = regexp.MustCompile(`^p1~[0-9a-f]{32}$`)

// Keyer computes pseudonyms. Its zero value is unusable; build it with New.
type Keyer struct {
	key []byte
}

// New checks the key and returns a Keyer. The key is the raw secret (the
// value of JOINERY_PSEUDONYM_KEY), at least MinKeyLen bytes.
func New(key string) (*Keyer, error) {
	if strings.TrimSpace(key) == "" {
		return nil, errors.New("pseudonym key is empty (JOINERY_PSEUDONYM_KEY)")
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("pseudonym key is %d bytes, want at least %d (JOINERY_PSEUDONYM_KEY; e.g. `openssl rand -hex 32`)", len(key), MinKeyLen)
	}
	return &Keyer{key: []byte(key)}, nil
}

// Of returns the pseudonym of a directory username. Usernames are compared
// case-insensitively everywhere in Joinery (LDAP uid matching is), so the
// name is folded first: Ada.Lovelace and ada.lovelace are one person.
// An empty name has no pseudonym ("").
func (k *Keyer) Of(username string) string {
	u := strings.ToLower(strings.TrimSpace(username))
	if u == "" {
		return ""
	}
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(domain))
	m.Write([]byte(u))
	// 128 bits: collisions between people are out of reach, and the
	// attribute stays short.
	return Prefix + hex.EncodeToString(m.Sum(nil)[:16])
}

// All returns the pseudonyms of names, in order, skipping empty ones and
// duplicates.
func (k *Keyer) All(names []string) []string {
	out := []string{}
	for _, n := range names {
		p := k.Of(n)
		if p == "" {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}

// Is says whether s has the shape of a pseudonym.
func Is(s string) bool { return shape.MatchString(s) }
