package pseudonym

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testKey = "pseudonym-test-key-0123456789abcdef"

func TestPseudonymsAreKeyedStableAndCaseFolded(t *testing.T) {
	k, err := New(testKey)
	require.NoError(t, err)
	p := k.Of("ada.lovelace")
	require.True(t, Is(p), p)
	require.Equal(t, p, k.Of(" Ada.Lovelace "), "one person, one value")
	require.NotEqual(t, p, k.Of("grace.hopper"))
	require.NotContains(t, p, "ada")
	require.NotContains(t, p, "lovelace")
	require.Empty(t, k.Of(" "))

	other, err := New(strings.Repeat("x", MinKeyLen))
	require.NoError(t, err)
	require.NotEqual(t, p, other.Of("ada.lovelace"), "without the key the value cannot be recomputed")

	require.Equal(t, []string{k.Of("a.b"), k.Of("c.d")}, k.All([]string{"a.b", "", "A.B", "c.d"}))
}

func TestBadKeysAreRefused(t *testing.T) {
	_, err := New("")
	require.ErrorContains(t, err, "JOINERY_PSEUDONYM_KEY")
	_, err = New("short-key")
	require.ErrorContains(t, err, "at least 32")
}

func TestShape(t *testing.T) {
	require.False(t, Is("ada.lovelace"))
	require.False(t, Is("p1~ADA"))
	require.True(t, Is(Prefix+strings.Repeat("0", 32)))
}
