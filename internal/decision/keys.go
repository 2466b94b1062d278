package decision

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Signer signs decisions. The inbox holds one; nothing else does.
type Signer interface {
	// KeyID names the key that signs.
	KeyID() string
	// Sign signs d (Version is filled in when zero).
	Sign(ctx context.Context, d Decision) (Signed, error)
}

// FileSigner signs with an Ed25519 private key read from a PKCS#8 PEM file.
type FileSigner struct {
	key ed25519.PrivateKey
	id  string
}

// LoadFileSigner reads the inbox's signing key. The file must not be readable
// by group or others: the key is what makes a decision a person's.
func LoadFileSigner(path string) (*FileSigner, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("decision key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("decision key %s: mode %o lets others read it; want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("decision key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("decision key %s: want a PKCS#8 \"PRIVATE KEY\" PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("decision key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("decision key %s: not an Ed25519 key", path)
	}
	return NewFileSigner(ek), nil
}

// NewFileSigner wraps an in-memory key (tests, and LoadFileSigner).
func NewFileSigner(key ed25519.PrivateKey) *FileSigner {
	return &FileSigner{key: key, id: KeyID(key.Public().(ed25519.PublicKey))}
}

// KeyID implements Signer.
func (s *FileSigner) KeyID() string { return s.id }

// Sign implements Signer.
func (s *FileSigner) Sign(_ context.Context, d Decision) (Signed, error) { return SignWith(s.key, d) }

// PublicKey returns the signer's public key as the worker records it.
func (s *FileSigner) PublicKey() PublicKey {
	return PublicKey{ID: s.id, Key: append([]byte(nil), s.key.Public().(ed25519.PublicKey)...)}
}

// FormatPublicKey is one line of the public keys file.
func FormatPublicKey(k PublicKey) string {
	return k.ID + " " + base64.StdEncoding.EncodeToString(k.Key)
}

// ParsePublicKeys reads the public keys file format: one "<id> <base64 key>"
// per line, '#' comments and blank lines ignored. An ID that does not match
// its key is refused, so a file cannot alias one key under another's name.
func ParsePublicKeys(data []byte) ([]PublicKey, error) {
	var out []PublicKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"<key-id> <base64 Ed25519 public key>\"", n)
		}
		raw, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("line %d: not a base64 32-byte Ed25519 public key", n)
		}
		if want := KeyID(raw); f[0] != want {
			return nil, fmt.Errorf("line %d: key id %q does not match its key (want %q)", n, f[0], want)
		}
		out = append(out, PublicKey{ID: f[0], Key: raw})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no public keys")
	}
	return out, nil
}

// LoadPublicKeys reads the public keys file (JOINERY_DECISION_PUBLIC_KEYS).
func LoadPublicKeys(path string) ([]PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("decision public keys: %w", err)
	}
	keys, err := ParsePublicKeys(b)
	if err != nil {
		return nil, fmt.Errorf("decision public keys %s: %w", path, err)
	}
	return keys, nil
}

// EnsureKeyFiles creates a signing key and its public keys file when the key
// does not exist yet (the dev stack calls it; production provisions both).
// An existing key is kept, and its public key is added to the public file if
// missing, so rotation by hand (a new key, the old line kept) is not undone.
func EnsureKeyFiles(keyPath, pubPath string) error {
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		tmp := keyPath + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, keyPath); err != nil {
			return err
		}
	}
	s, err := LoadFileSigner(keyPath)
	if err != nil {
		return err
	}
	line := FormatPublicKey(s.PublicKey())
	existing, _ := os.ReadFile(pubPath)
	if bytes.Contains(existing, []byte(line)) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(pubPath), 0o755); err != nil {
		return err
	}
	if len(existing) > 0 && !bytes.HasSuffix(existing, []byte("\n")) {
		existing = append(existing, '\n')
	}
	return os.WriteFile(pubPath, append(existing, []byte(line+"\n")...), 0o644)
}
