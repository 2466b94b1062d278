package decision

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// TransitSigner signs with an Ed25519 key held by Vault's transit engine:
// the private key never leaves Vault, and only the inbox's own Vault
// identity may use it (a policy with update on <mount>/sign/<key>). The
// worker, which must never be able to sign, has no such capability.
type TransitSigner struct {
	client *vault.Client
	mount  string
	key    string
	// version and pub are the key version that signs and its public key.
	version int
	pub     ed25519.PublicKey
	id      string
}

// NewTransitSigner reads the transit key's latest version and public key.
// path is "<mount>/<key>", e.g. "transit/joinery-decisions"; the key must be
// of type ed25519.
func NewTransitSigner(ctx context.Context, client *vault.Client, path string) (*TransitSigner, error) {
	mount, key, ok := strings.Cut(strings.Trim(path, "/"), "/")
	if !ok || mount == "" || key == "" || strings.Contains(key, "/") {
		return nil, fmt.Errorf("transit key %q: want <mount>/<key>", path)
	}
	sec, err := client.Logical().ReadWithContext(ctx, mount+"/keys/"+key)
	if err != nil {
		return nil, fmt.Errorf("transit key %s: %w", path, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("transit key %s: not found", path)
	}
	if t, _ := sec.Data["type"].(string); t != "ed25519" {
		return nil, fmt.Errorf("transit key %s: type %q, want ed25519", path, t)
	}
	latest, err := jsonInt(sec.Data["latest_version"])
	if err != nil {
		return nil, fmt.Errorf("transit key %s: latest_version: %w", path, err)
	}
	keys, _ := sec.Data["keys"].(map[string]any)
	entry, _ := keys[strconv.Itoa(latest)].(map[string]any)
	b64, _ := entry["public_key"].(string)
	pub, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("transit key %s: version %d has no Ed25519 public key", path, latest)
	}
	return &TransitSigner{client: client, mount: mount, key: key, version: latest, pub: pub, id: KeyID(pub)}, nil
}

// KeyID implements Signer.
func (s *TransitSigner) KeyID() string { return s.id }

// PublicKey is the line the worker's public keys file needs.
func (s *TransitSigner) PublicKey() PublicKey {
	return PublicKey{ID: s.id, Key: append([]byte(nil), s.pub...)}
}

// Sign implements Signer: Vault signs the same bytes a FileSigner would,
// and the signature is checked here before it is handed out.
func (s *TransitSigner) Sign(ctx context.Context, d Decision) (Signed, error) {
	if d.Version == 0 {
		d.Version = FormatVersion
	}
	if err := d.Validate(); err != nil {
		return Signed{}, err
	}
	payload, err := json.Marshal(d)
	if err != nil {
		return Signed{}, err
	}
	msg := message(payload)
	sec, err := s.client.Logical().WriteWithContext(ctx, s.mount+"/sign/"+s.key, map[string]any{
		"input": base64.StdEncoding.EncodeToString(msg), "key_version": s.version,
	})
	if err != nil {
		return Signed{}, fmt.Errorf("transit sign: %w", err)
	}
	if sec == nil || sec.Data == nil {
		return Signed{}, errors.New("transit sign: empty answer")
	}
	raw, _ := sec.Data["signature"].(string)
	prefix := fmt.Sprintf("vault:v%d:", s.version)
	if !strings.HasPrefix(raw, prefix) {
		return Signed{}, fmt.Errorf("transit sign: signature not by key version %d", s.version)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(raw, prefix))
	if err != nil || !ed25519.Verify(s.pub, msg, sig) {
		return Signed{}, errors.New("transit sign: the signature does not verify with the key's public key")
	}
	return Signed{KeyID: s.id, Payload: payload, Signature: sig}, nil
}

func jsonInt(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		return int(n), nil
	case int:
		return n, nil
	}
	return 0, fmt.Errorf("not a number: %v", v)
}
