package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/directory"
)

// The generation comes from the entry's marker, and the CLI refuses what it
// can already see is no rehire (the workflow re-checks everything).
func TestRehireGeneration(t *testing.T) {
	disabled := func(e *directory.Entry) bool { return e.Attributes["description"] != nil }
	off := map[string][]string{"description": {directory.DisabledMarker}}
	dn := "uid=re.hire,ou=people,dc=joinery,dc=test"
	for name, tc := range map[string]struct {
		e          *directory.Entry
		next, says string
	}{
		"first rehire":      {&directory.Entry{DN: dn, Owner: "joiner-7", Attributes: off}, "joiner-7~g2", ""},
		"second rehire":     {&directory.Entry{DN: dn, Owner: "joiner-7~g2", Attributes: off}, "joiner-7~g3", ""},
		"no entry":          {nil, "", "no entry"},
		"not Joinery's":     {&directory.Entry{DN: dn, Attributes: off}, "", "no Joinery marker"},
		"another's marker":  {&directory.Entry{DN: dn, Owner: "joiner-8", Attributes: off}, "", "not one of this person's joiners"},
		"forged generation": {&directory.Entry{DN: dn, Owner: "joiner-7~g01", Attributes: off}, "", "not one of this person's joiners"},
		"live account":      {&directory.Entry{DN: dn, Owner: "joiner-7"}, "", "not disabled"},
	} {
		t.Run(name, func(t *testing.T) {
			next, why := rehireGeneration("7", tc.e, disabled)
			require.Equal(t, tc.next, next)
			if tc.says == "" {
				require.Empty(t, why)
			} else {
				require.Contains(t, why, tc.says)
			}
		})
	}
}
