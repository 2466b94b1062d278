package secrets

import (
	"errors"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"
)

// The answers Vault 1.21 gives for what no longer exists, as seen on the
// dev stack, and the ones that must not be mistaken for them.
func TestGoneAnswers(t *testing.T) {
	re := func(code int, msg string) error { return &vault.ResponseError{StatusCode: code, Errors: []string{msg}} }

	require.True(t, isGoneWrap(re(400, "wrapping token is not valid or does not exist")))
	require.False(t, isGoneWrap(re(403, "permission denied")), "a denial is not a redeemed token")
	require.False(t, isGoneWrap(re(503, "Vault is sealed")))
	require.False(t, isGoneWrap(errors.New("connection refused")))

	require.True(t, isGoneSecretID(re(500, `1 error occurred: * failed to find accessor entry for secret_id_accessor: "x"`)))
	require.True(t, isGoneSecretID(re(404, "")))
	require.True(t, isGoneSecretID(re(400, "invalid role name")))
	require.False(t, isGoneSecretID(re(500, "internal error")), "a plain 500 is an outage, retried")
	require.False(t, isGoneSecretID(re(403, "permission denied")))

	require.True(t, isCASMismatch(re(400, "check-and-set parameter did not match the current version")))
	require.False(t, isCASMismatch(re(400, "no data provided")))
	require.False(t, isCASMismatch(re(500, "check-and-set")))
}
