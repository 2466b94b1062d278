package decision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func key(t *testing.T) *FileSigner {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return NewFileSigner(k)
}

func valid() Decision {
	return Decision{WorkflowID: "joiner-200", PlanHash: "sha256:aa", PolicyVersion: "default@sha256:1",
		Approver: "ada.lovelace", Action: ActionApprove, IssuedAt: now, Nonce: "0123456789abcdef"}
}

func expect() Expect {
	return Expect{WorkflowID: "joiner-200", PlanHash: "sha256:aa", PolicyVersion: "default@sha256:1",
		Now: now.Add(time.Minute), MaxAge: 15 * time.Minute, ClockSkew: 2 * time.Minute}
}

func TestSignedDecisionVerifies(t *testing.T) {
	s := key(t)
	signed, err := s.Sign(context.Background(), valid())
	require.NoError(t, err)
	d, err := Check([]PublicKey{s.PublicKey()}, signed, expect())
	require.NoError(t, err)
	require.Equal(t, "ada.lovelace", d.Approver)
	require.Equal(t, FormatVersion, d.Version)
}

// Each way an adversary could bend a decision is refused with its own
// reason.
func TestCheckRefuses(t *testing.T) {
	s, other := key(t), key(t)
	keys := []PublicKey{s.PublicKey()}
	sign := func(d Decision) Signed {
		out, err := s.Sign(context.Background(), d)
		require.NoError(t, err)
		return out
	}
	cases := []struct {
		name string
		s    func() Signed
		exp  func(Expect) Expect
		want error
	}{
		{"unsigned", func() Signed { return Signed{} }, nil, ErrUnsigned},
		{"unknown key", func() Signed {
			out, err := other.Sign(context.Background(), valid())
			require.NoError(t, err)
			return out
		}, nil, ErrUnknownKey},
		{"another key under this key's id", func() Signed {
			out, err := other.Sign(context.Background(), valid())
			require.NoError(t, err)
			out.KeyID = s.KeyID()
			return out
		}, nil, ErrBadSignature},
		{"payload edited", func() Signed {
			out := sign(valid())
			out.Payload = []byte(strings.Replace(string(out.Payload), "approve", "reject", 1))
			return out
		}, nil, ErrBadSignature},
		{"other joiner", func() Signed { return sign(valid()) }, func(e Expect) Expect { e.WorkflowID = "joiner-201"; return e }, ErrOtherJoiner},
		{"plan changed", func() Signed { return sign(valid()) }, func(e Expect) Expect { e.PlanHash = "sha256:bb"; return e }, ErrPlanChanged},
		{"policy changed", func() Signed { return sign(valid()) }, func(e Expect) Expect { e.PolicyVersion = "default@sha256:2"; return e }, ErrPlanChanged},
		{"stale", func() Signed { return sign(valid()) }, func(e Expect) Expect { e.Now = now.Add(time.Hour); return e }, ErrStale},
		{"from the future", func() Signed { return sign(valid()) }, func(e Expect) Expect { e.Now = now.Add(-time.Hour); return e }, ErrFromTheFuture},
		{"replayed", func() Signed { return sign(valid()) }, func(e Expect) Expect {
			e.Used = func(n string) bool { return n == "0123456789abcdef" }
			return e
		}, ErrReplayed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := expect()
			if tc.exp != nil {
				e = tc.exp(e)
			}
			_, err := Check(keys, tc.s(), e)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
		})
	}
}

// A signer refuses to sign a malformed decision (and a verifier refuses
// one that was somehow signed): no empty approver, unknown action, bad end
// date, oversized comment or short nonce ever carries a signature.
func TestMalformedDecisionsAreNotSigned(t *testing.T) {
	s := key(t)
	for name, mut := range map[string]func(*Decision){
		"no approver":      func(d *Decision) { d.Approver = " " },
		"unknown action":   func(d *Decision) { d.Action = "sudo" },
		"extend bad date":  func(d *Decision) { d.Action, d.EndDate = ActionExtend, "tomorrow" },
		"end date on yes":  func(d *Decision) { d.EndDate = "2027-01-01" },
		"huge comment":     func(d *Decision) { d.Comment = strings.Repeat("x", MaxCommentLen+1) },
		"short nonce":      func(d *Decision) { d.Nonce = "1" },
		"no time":          func(d *Decision) { d.IssuedAt = time.Time{} },
		"no plan hash":     func(d *Decision) { d.PlanHash = "" },
		"no workflow":      func(d *Decision) { d.WorkflowID = "" },
		"unknown version":  func(d *Decision) { d.Version = 7 },
		"empty everything": func(d *Decision) { *d = Decision{} },
	} {
		d := valid()
		mut(&d)
		_, err := s.Sign(context.Background(), d)
		require.Error(t, err, name)
	}
}

func TestPlanHashIsStableAndSensitive(t *testing.T) {
	type plan struct {
		Groups []string          `json:"groups"`
		Attrs  map[string]string `json:"attrs"`
	}
	a, err := PlanHash(plan{Groups: []string{"a"}, Attrs: map[string]string{"x": "1", "y": "2"}})
	require.NoError(t, err)
	b, err := PlanHash(plan{Groups: []string{"a"}, Attrs: map[string]string{"y": "2", "x": "1"}})
	require.NoError(t, err)
	require.Equal(t, a, b, "map order does not change the hash")
	c, err := PlanHash(plan{Groups: []string{"a", "finance"}, Attrs: map[string]string{"x": "1", "y": "2"}})
	require.NoError(t, err)
	require.NotEqual(t, a, c, "an added group changes the hash")
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.pem"), filepath.Join(dir, "pub.keys")
	require.NoError(t, EnsureKeyFiles(priv, pub))
	fi, err := os.Stat(priv)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	s, err := LoadFileSigner(priv)
	require.NoError(t, err)
	keys, err := LoadPublicKeys(pub)
	require.NoError(t, err)
	require.Equal(t, []PublicKey{s.PublicKey()}, keys)

	// Idempotent: the key is kept, the public line not repeated.
	require.NoError(t, EnsureKeyFiles(priv, pub))
	again, err := LoadPublicKeys(pub)
	require.NoError(t, err)
	require.Len(t, again, 1)

	// A readable private key is refused.
	require.NoError(t, os.Chmod(priv, 0o644))
	_, err = LoadFileSigner(priv)
	require.ErrorContains(t, err, "0600")

	// A public keys file cannot alias a key under another key's ID.
	other := key(t)
	line := FormatPublicKey(PublicKey{ID: s.KeyID(), Key: other.PublicKey().Key})
	_, err = ParsePublicKeys([]byte(line + "\n"))
	require.ErrorContains(t, err, "does not match")
	_, err = ParsePublicKeys([]byte("# nothing\n"))
	require.Error(t, err)
}
