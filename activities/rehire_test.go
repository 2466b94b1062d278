package activities

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Admission accepts joiner-<key> and joiner-<key>~g<N> for N 2..999 written
// without leading zeros, and nothing else: every accepted ID names exactly
// one key and generation, so no two spellings act for one generation.
func TestParseJoinerIDIsStrict(t *testing.T) {
	for id, want := range map[string]struct {
		key string
		gen int
	}{
		"joiner-100":             {"100", 1},
		"joiner-100~g2":          {"100", 2},
		"joiner-100~g999":        {"100", 999},
		"joiner-nhi-bot-staging": {"nhi-bot-staging", 1},
		"joiner-a.b_c-d~g17":     {"a.b_c-d", 17},
	} {
		key, gen, ok := ParseJoinerID(id)
		require.True(t, ok, id)
		require.Equal(t, want.key, key, id)
		require.Equal(t, want.gen, gen, id)
		require.Equal(t, id, RehireWorkflowID(key, gen), "one spelling per generation")
	}
	for _, id := range []string{"", "joiner-", "100", "joiner-100~g1", "joiner-100~g0", "joiner-100~g02", "joiner-100~g1000",
		"joiner-100~g", "joiner-100~g2~g3", "joiner-100~x2", "joiner-~g2", "joiner-100~g+2", "joiner-100~g-2", "Joiner-100~g2", "joiner-100~g2 ", "joiner-10~0~g2", "joiner-10~0"} {
		_, _, ok := ParseJoinerID(id)
		require.False(t, ok, "%q must not be a joiner ID", id)
	}
	require.True(t, joinerIDFor("joiner-100~g3", "100"))
	require.False(t, joinerIDFor("joiner-1000~g3", "100"))
	require.False(t, joinerIDFor("joiner-100~g3", "100~g3"))
	require.True(t, isGenerationID("joiner-100~g2"))
	require.False(t, isGenerationID("joiner-100"))
}
