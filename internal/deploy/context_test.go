package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/stack"
)

// The Dockerfile's build stage copies the whole context (COPY . .): without
// these exclusions the dev stack's Vault root token and unseal key, the
// signing and codec keys (.state) and the history (.git) would sit in the
// build cache and intermediate layers.
func TestBuildContextExcludesLocalState(t *testing.T) {
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(repo, ".dockerignore"))
	require.NoError(t, err, ".dockerignore must exist")
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[strings.TrimSuffix(strings.TrimSpace(l), "/")] = true
	}
	for _, must := range []string{".state", ".git", "bin", ".cache"} {
		require.True(t, lines[must], ".dockerignore must exclude %s", must)
	}
}

// The Web UI is published without a login of its own: it must not offer
// terminate, start or signal to whoever reaches it.
func TestComposeUIHasNoWriteActions(t *testing.T) {
	p := loadProject(t)
	ui, ok := p.Services["temporal-ui"]
	require.True(t, ok)
	v := ui.Environment["TEMPORAL_DISABLE_WRITE_ACTIONS"]
	require.NotNil(t, v)
	require.Equal(t, "true", *v)
}
