package codec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func key(t *testing.T, id string) Key {
	t.Helper()
	k, err := NewKey(id)
	require.NoError(t, err)
	return k
}

func newCodec(t *testing.T, keys ...Key) *Codec {
	t.Helper()
	c, err := New(keys)
	require.NoError(t, err)
	return c
}

// joinerPayload is what the SDK's default converter makes of a joiner's
// personal data.
func joinerPayload(t *testing.T) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{
		"firstName": "Grace", "lastName": "Hopper", "jobTitle": "Rear Admiral", "workEmail": "grace.hopper@joinery.test",
	})
	require.NoError(t, err)
	return p
}

func encodeOne(t *testing.T, c *Codec, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	out, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	require.Len(t, out, 1)
	return out[0]
}

func decodeOne(c *Codec, p *commonpb.Payload) (*commonpb.Payload, error) {
	out, err := c.Decode([]*commonpb.Payload{p})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func TestRoundTripThroughDataConverter(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
	in := struct {
		First, Last string
		Age         int
	}{"Grace", "Hopper", 85}
	p, err := dc.ToPayload(in)
	require.NoError(t, err)
	require.NotContains(t, string(p.GetData()), "Grace")
	out := in
	out.First, out.Last, out.Age = "", "", 0
	require.NoError(t, dc.FromPayload(p, &out))
	require.Equal(t, in, out)
}

func TestMetadataAndConfidentiality(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	orig := joinerPayload(t)
	enc := encodeOne(t, c, orig)
	require.Equal(t, map[string][]byte{
		"encoding":          []byte("binary/encrypted"),
		"encryption-key-id": []byte("k1"),
	}, enc.GetMetadata(), "the outer metadata names the codec and the key, nothing else")
	for _, s := range []string{"Grace", "Hopper", "Rear Admiral", "grace.hopper", "json/plain"} {
		require.NotContains(t, string(enc.GetData()), s, "neither the data nor the original encoding are in clear")
	}
	dec, err := decodeOne(c, enc)
	require.NoError(t, err)
	require.Equal(t, orig.GetMetadata(), dec.GetMetadata(), "the original encoding metadata comes back")
	require.Equal(t, orig.GetData(), dec.GetData())
}

func TestFreshNoncePerPayload(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	p := joinerPayload(t)
	out, err := c.Encode([]*commonpb.Payload{p, p})
	require.NoError(t, err)
	require.NotEqual(t, out[0].GetData()[:12], out[1].GetData()[:12], "equal payloads must not share a nonce")
	require.NotEqual(t, out[0].GetData(), out[1].GetData())
}

func TestTamperDetection(t *testing.T) {
	c := newCodec(t, key(t, "k1"), key(t, "k0"))
	enc := encodeOne(t, c, joinerPayload(t))
	for i := range enc.GetData() {
		bad := &commonpb.Payload{Metadata: enc.GetMetadata(), Data: bytes.Clone(enc.GetData())}
		bad.Data[i] ^= 0x01
		_, err := decodeOne(c, bad)
		require.ErrorIs(t, err, ErrDecrypt, "flipping byte %d must be detected", i)
	}
	// Truncated: shorter than nonce and tag.
	_, err := decodeOne(c, &commonpb.Payload{Metadata: enc.GetMetadata(), Data: enc.GetData()[:20]})
	require.ErrorIs(t, err, ErrDecrypt)
	// Relabelled with the other key this codec holds: the key ID is
	// associated data, so this fails authentication.
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{
		MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte("k0"),
	}, Data: enc.GetData()}
	_, err = decodeOne(c, relabelled)
	require.ErrorIs(t, err, ErrDecrypt)
}

func TestWrongKey(t *testing.T) {
	enc := encodeOne(t, newCodec(t, key(t, "k1")), joinerPayload(t))

	// Another deployment's key under the same ID: authentication fails.
	_, err := decodeOne(newCodec(t, key(t, "k1")), enc)
	require.ErrorIs(t, err, ErrDecrypt)

	// A key ID this codec does not hold: a clear error naming it.
	_, err = decodeOne(newCodec(t, key(t, "k2")), enc)
	require.ErrorIs(t, err, ErrUnknownKey)
	require.ErrorContains(t, err, `"k1"`)
	require.ErrorContains(t, err, "k2", "the error lists the keys it does hold")

	// No key ID at all.
	_, err = decodeOne(newCodec(t, key(t, "k1")), &commonpb.Payload{
		Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted)}, Data: enc.GetData()})
	require.ErrorIs(t, err, ErrUnknownKey)
}

func TestRotation(t *testing.T) {
	old := key(t, "2026-01")
	before := newCodec(t, old)
	sealedOld := encodeOne(t, before, joinerPayload(t))

	// A new key is prepended: it encrypts, the old one still decrypts.
	after := newCodec(t, key(t, "2026-12"), old)
	require.Equal(t, "2026-12", after.ActiveKeyID())
	dec, err := decodeOne(after, sealedOld)
	require.NoError(t, err)
	require.Equal(t, joinerPayload(t).GetData(), dec.GetData())

	sealedNew := encodeOne(t, after, joinerPayload(t))
	require.Equal(t, "2026-12", string(sealedNew.GetMetadata()[MetadataKeyID]))
	// A process that has not picked the new key up yet cannot read it, and
	// says why: deploy the new key file everywhere before anyone encrypts.
	_, err = decodeOne(before, sealedNew)
	require.ErrorIs(t, err, ErrUnknownKey)
}

func TestEmptyNilAndPlainPayloads(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	out, err := c.Encode(nil)
	require.NoError(t, err)
	require.Empty(t, out)
	out, err = c.Decode([]*commonpb.Payload{})
	require.NoError(t, err)
	require.Empty(t, out)

	// A payload with no data (the SDK's encoding of nil) is still sealed:
	// even its encoding says something.
	null, err := converter.GetDefaultDataConverter().ToPayload(nil)
	require.NoError(t, err)
	empty := &commonpb.Payload{}
	enc, err := c.Encode([]*commonpb.Payload{null, empty, nil})
	require.NoError(t, err)
	require.Len(t, enc, 3)
	require.Equal(t, EncodingEncrypted, string(enc[0].GetMetadata()[MetadataEncoding]))
	require.Equal(t, EncodingEncrypted, string(enc[1].GetMetadata()[MetadataEncoding]))
	require.Nil(t, enc[2])
	dec, err := c.Decode(enc)
	require.NoError(t, err)
	require.Equal(t, null.GetMetadata(), dec[0].GetMetadata())
	require.Empty(t, dec[1].GetData())
	require.Empty(t, dec[1].GetMetadata())
	require.Nil(t, dec[2])

	// Payloads written before encryption was on pass through, so running
	// joiners and their histories stay readable.
	plain := joinerPayload(t)
	dec, err = c.Decode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.Same(t, plain, dec[0])
}

func TestNewRefusesBadKeys(t *testing.T) {
	_, err := New(nil)
	require.Error(t, err)
	_, err = New([]Key{{ID: "short", Secret: make([]byte, 16)}})
	require.ErrorContains(t, err, "16 bytes")
	_, err = New([]Key{key(t, "a"), key(t, "a")})
	require.ErrorContains(t, err, "twice")
	_, err = New([]Key{{ID: "bad id", Secret: make([]byte, 32)}})
	require.Error(t, err)
}

func writeFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "codec.keys")
	require.NoError(t, os.WriteFile(p, []byte(body), mode))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func TestLoadKeyFile(t *testing.T) {
	a, b := key(t, "new"), key(t, "old")
	p := writeFile(t, "# comment\n\n"+a.Line()+"\n  "+b.Line()+"  \n", 0o600)
	keys, err := LoadKeyFile(p)
	require.NoError(t, err)
	require.Equal(t, []Key{a, b}, keys, "order is kept: the first line encrypts")

	for name, tc := range map[string]struct {
		body string
		mode os.FileMode
		want string
	}{
		"group-readable": {a.Line() + "\n", 0o640, "want 0600"},
		"world-readable": {a.Line() + "\n", 0o644, "want 0600"},
		"empty":          {"# nothing\n", 0o600, "no keys"},
		"three fields":   {a.Line() + " extra\n", 0o600, "line 1"},
		"not base64":     {"k1 !!!!\n", 0o600, "not standard base64"},
		"short key":      {"k1 " + "AAAA" + "\n", 0o600, "3 bytes"},
		"duplicate":      {a.Line() + "\n" + a.Line() + "\n", 0o600, "already on line 1"},
		"bad id":         {"k/1 " + strings.Fields(a.Line())[1] + "\n", 0o600, "only letters"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadKeyFile(writeFile(t, tc.body, tc.mode))
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), strings.Fields(a.Line())[1], "errors never echo key material")
		})
	}
	_, err = LoadKeyFile(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}

func TestEnsureKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys", "codec.keys")
	created, err := EnsureKeyFile(p)
	require.NoError(t, err)
	require.True(t, created)
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	first, err := os.ReadFile(p)
	require.NoError(t, err)
	c, err := Load(p)
	require.NoError(t, err)
	require.Len(t, c.KeyIDs(), 1)

	created, err = EnsureKeyFile(p)
	require.NoError(t, err)
	require.False(t, created, "an existing key file is never replaced")
	again, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, first, again)
	left, err := filepath.Glob(filepath.Join(filepath.Dir(p), ".codec-keys-*"))
	require.NoError(t, err)
	require.Empty(t, left, "no temporary files left behind")
}
