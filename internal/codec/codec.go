// Package codec encrypts Temporal payloads so that joiners' personal data
// (names, titles, locations, e-mail addresses, error messages that name
// people) never sits in clear in a workflow history, and serves the codec
// endpoint the Temporal Web UI and CLI call to show it to authorised
// operators.
//
// Each payload is sealed with AES-256-GCM under a fresh random 96-bit nonce.
// The sealed plaintext is the whole original payload (metadata and data), so
// its original encoding is both confidential and authenticated; the outer
// metadata names the key ("encryption-key-id") and is bound to the
// ciphertext as associated data, so relabelling a payload with another key
// or codec version fails authentication instead of decrypting to garbage.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Metadata keys and values of an encrypted payload.
const (
	// MetadataEncoding is the standard Temporal metadata key naming a
	// payload's encoding.
	MetadataEncoding = converter.MetadataEncoding
	// EncodingEncrypted marks a payload sealed by this codec.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that sealed the payload.
	MetadataKeyID = "encryption-key-id"
)

// aadPrefix versions the associated data: a future format change gets a new
// prefix, and a payload can never be read under the wrong format.
const aadPrefix = "joinery-codec/v1\x00"

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// ErrUnknownKey means a payload was sealed with a key this codec does not
// hold (a key removed too early, or a payload from another deployment).
var ErrUnknownKey = errors.New("codec: payload encrypted with an unknown key")

// ErrDecrypt means authentication failed: the payload was altered, relabelled
// or sealed with a different key under the same ID.
var ErrDecrypt = errors.New("codec: payload failed authentication (tampered, or a different key under that ID)")

// Key is one named AES-256 key.
type Key struct {
	ID     string
	Secret []byte
}

// Codec is a converter.PayloadCodec that encrypts with the first of its keys
// and decrypts with any of them, so a new key can be prepended while
// histories sealed with older ones stay readable.
type Codec struct {
	active string
	aeads  map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New builds a codec from keys; keys[0] encrypts. IDs must be unique and
// valid (see ValidKeyID), and every key KeySize bytes.
func New(keys []Key) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: no keys")
	}
	c := &Codec{active: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if err := ValidKeyID(k.ID); err != nil {
			return nil, err
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("codec: key %q is %d bytes, want %d (AES-256)", k.ID, len(k.Secret), KeySize)
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("codec: key %q listed twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
	}
	return c, nil
}

// ActiveKeyID is the ID of the key new payloads are sealed with.
func (c *Codec) ActiveKeyID() string { return c.active }

// KeyIDs lists the IDs of every key the codec decrypts with, sorted.
func (c *Codec) KeyIDs() []string {
	return slices.Sorted(maps.Keys(c.aeads))
}

// ValidKeyID reports whether id can name a key: 1 to 64 of A-Z a-z 0-9 . _ -
// (it travels in payload metadata and in the key file's first column).
func ValidKeyID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("codec: key ID %q: want 1 to 64 characters", id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Errorf("codec: key ID %q: only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

func aad(keyID string) []byte {
	return append([]byte(aadPrefix), keyID...)
}

// Encode seals every payload with the active key. Nil entries stay nil.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	aead := c.aeads[c.active]
	for i, p := range payloads {
		if p == nil {
			continue
		}
		// Deterministic marshalling is not needed for correctness (the bytes
		// are sealed, not compared) but keeps equal inputs equal-length.
		plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:    []byte(c.active),
			},
			Data: aead.Seal(nonce, nonce, plain, aad(c.active)),
		}
	}
	return out, nil
}

// Decode opens every payload this codec sealed. Payloads with another
// encoding pass through unchanged: joiners started before encryption was
// turned on keep running, and their histories stay readable.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil || string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		dec, err := c.open(p)
		if err != nil {
			return nil, err
		}
		out[i] = dec
	}
	return out, nil
}

func (c *Codec) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	aead, ok := c.aeads[id]
	if !ok {
		if id == "" {
			return nil, fmt.Errorf("%w: the payload names no key (metadata %q missing)", ErrUnknownKey, MetadataKeyID)
		}
		return nil, fmt.Errorf("%w %q; this codec holds %v", ErrUnknownKey, id, c.KeyIDs())
	}
	data := p.GetData()
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", ErrDecrypt, len(data))
	}
	nonce, sealed := data[:aead.NonceSize()], data[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, aad(id))
	if err != nil {
		return nil, fmt.Errorf("%w (key %q)", ErrDecrypt, id)
	}
	var orig commonpb.Payload
	if err := proto.Unmarshal(plain, &orig); err != nil {
		return nil, fmt.Errorf("codec: sealed payload is not a payload: %w", err)
	}
	return &orig, nil
}
