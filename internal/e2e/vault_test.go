package e2e

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"
)

// unwrap redeems a response-wrapping token the way a manager would.
func unwrap(addr, token string) (*vault.Secret, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken("")
	s, err := c.Logical().Unwrap(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnwrap, err)
	}
	if s == nil {
		return nil, errUnwrap
	}
	return s, nil
}

func unwrapPassword(t *testing.T, addr, token string) string {
	t.Helper()
	s, err := unwrap(addr, token)
	require.NoError(t, err)
	data, ok := s.Data["data"].(map[string]any)
	require.True(t, ok, "a wrapped KV v2 read carries data.data")
	pw, _ := data["password"].(string)
	return pw
}

var b64Field = regexp.MustCompile(`"data":"([A-Za-z0-9+/=]+)"`)

// decodePayloads returns the decoded text of every base64 payload in a
// history event's JSON, so a secret scan sees what the payloads hold.
func decodePayloads(eventJSON string) string {
	var b strings.Builder
	for _, m := range b64Field.FindAllStringSubmatch(eventJSON, -1) {
		if raw, err := base64.StdEncoding.DecodeString(m[1]); err == nil {
			b.Write(raw)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
