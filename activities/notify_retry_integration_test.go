package activities

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/mail"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// A Notify retried under the same activity identity (the first attempt's
// mail was accepted, then the worker died before Temporal recorded it) sends
// the same Message-ID, so the approver's mail client shows one message; the
// next reminder of the same kind is a message of its own. Read back from
// the dev stack's Mailpit.
func TestIntegrationRetriedNotifyRepeatsTheMessageID(t *testing.T) {
	ep := stacktest.Ensure(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "it-" + hex.EncodeToString(b)
	sender, err := mail.New(mail.Config{Addr: ep.SMTPAddr, From: "joinery@joinery.test"})
	require.NoError(t, err)
	a := &Activities{Notifier: MailNotifier{Sender: sender, Addresses: DirectoryAddressBook{Domain: "joinery.test"}, InboxURL: "http://127.0.0.1:8092"}}
	n := Notification{To: "ada.lovelace", HRISID: id, Kind: "reminder", Message: "still waiting"}
	require.NoError(t, runSteps(t, a, JoinerWorkflowID(id), []step{
		{"reminder-7", a.Notify, n}, // attempt 1
		{"reminder-7", a.Notify, n}, // its retry: same workflow, run and activity ID
		{"reminder-9", a.Notify, n}, // the next reminder
	}, []any{nil, nil, nil}))

	type summary struct{ ID, MessageID string }
	var found []summary
	require.Eventually(t, func() bool {
		var res struct{ Messages []summary }
		getJSON(t, ep.MailpitAPIURL+"/api/v1/search?query="+url.QueryEscape(`subject:"joiner `+id+` "`), &res)
		found = res.Messages
		return len(found) == 3
	}, 10*time.Second, 100*time.Millisecond, "three sends reach Mailpit")
	for _, m := range found {
		defer deleteMessage(ep.MailpitAPIURL, m.ID)
	}
	byID := map[string]int{}
	for _, m := range found {
		require.Regexp(t, `^joinery\.[0-9a-f]{32}@joinery\.test$`, m.MessageID)
		byID[m.MessageID]++
	}
	counts := []int{}
	for _, c := range byID {
		counts = append(counts, c)
	}
	require.ElementsMatch(t, []int{2, 1}, counts, "the retry repeats its Message-ID, the next reminder has its own: %v", byID)
}
