package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/pseudonym"
)

// `list --manager X` looks for X's pseudonym (what joiners publish) and, for
// joiners planned before pseudonyms, X itself; never for anything else.
func TestListQueryTranslatesTheManager(t *testing.T) {
	k, err := pseudonym.New("starter-test-pseudonym-key-0123456789")
	require.NoError(t, err)
	q, err := listQuery("awaiting-approval", "ada.lovelace", k.Of("ada.lovelace"), "", "", 0, time.Now())
	require.NoError(t, err)
	require.Contains(t, q, `(JoinerManager = "`+k.Of("ada.lovelace")+`" OR JoinerManager = "ada.lovelace")`)
	require.Contains(t, q, `JoinerStage = "AwaitingApproval"`)

	// Without a pseudonym there is nothing to look for: refused, not a
	// silent username-only query that would miss every new joiner.
	_, err = listQuery("", "ada.lovelace", "", "", "", 0, time.Now())
	require.ErrorContains(t, err, "JOINERY_PSEUDONYM_KEY")
	// Injection through the name is refused before any key is used.
	_, err = listQuery("", `x" OR 1=1`, k.Of(`x" OR 1=1`), "", "", 0, time.Now())
	require.ErrorContains(t, err, "--manager")
	q, err = listQuery("", "", "", "employee", "", 0, time.Now())
	require.NoError(t, err)
	require.False(t, strings.Contains(q, "JoinerManager"))
}
