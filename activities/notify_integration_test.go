package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/mail"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// An approval request goes through the real SMTP connector to the dev
// stack's Mailpit; read back through Mailpit's API, it is addressed to the
// approver and its link opens the joiner's page on the inbox. The inbox here
// is a stand-in serving GET /joiners/{id} as the approval inbox does, so the
// test proves the link survives rendering and transfer encoding intact.
func TestIntegrationMailNotifierThroughMailpit(t *testing.T) {
	ep := stacktest.Ensure(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	hrisID := "it-" + hex.EncodeToString(b)

	var mu sync.Mutex
	var opened []string
	inbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		opened = append(opened, r.URL.Path)
		mu.Unlock()
		if r.Method == http.MethodGet && r.URL.Path == "/joiners/joiner-"+hrisID {
			_, _ = io.WriteString(w, "joiner page")
			return
		}
		http.NotFound(w, r)
	}))
	defer inbox.Close()

	sender, err := mail.New(mail.Config{Addr: ep.SMTPAddr, From: "joinery@joinery.test"})
	require.NoError(t, err)
	n := MailNotifier{Sender: sender, Addresses: DirectoryAddressBook{Domain: "joinery.test"}, InboxURL: inbox.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, n.Notify(ctx, Notification{To: "ada.lovelace", HRISID: hrisID, Kind: "approval-request",
		Message: "please approve joiner " + hrisID + " (Zoë Smith, Platform Engineer)"}))

	type summary struct{ ID, Subject string }
	var found []summary
	require.Eventually(t, func() bool {
		var res struct{ Messages []summary }
		getJSON(t, ep.MailpitAPIURL+"/api/v1/search?query="+url.QueryEscape(`subject:"joiner `+hrisID+`"`), &res)
		found = res.Messages
		return len(found) > 0
	}, 10*time.Second, 100*time.Millisecond)
	require.Len(t, found, 1)
	defer deleteMessage(ep.MailpitAPIURL, found[0].ID)

	var m struct {
		Subject string
		To      []struct{ Address string }
		Text    string
	}
	getJSON(t, ep.MailpitAPIURL+"/api/v1/message/"+found[0].ID, &m)
	require.Equal(t, "Approval needed: joiner "+hrisID, m.Subject)
	require.Len(t, m.To, 1)
	require.Equal(t, "ada.lovelace@joinery.test", m.To[0].Address)
	require.Contains(t, m.Text, "Zoë Smith")

	link := regexp.MustCompile(`https?://\S+`).FindString(m.Text)
	require.Equal(t, inbox.URL+"/joiners/joiner-"+hrisID, link)
	resp, err := http.Get(link)
	require.NoError(t, err)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the link opens the joiner's page (requests: %v)", opened)
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

// deleteMessage removes only this test's message: the Mailpit is shared.
func deleteMessage(api, id string) {
	req, _ := http.NewRequest(http.MethodDelete, api+"/api/v1/messages", strings.NewReader(`{"IDs":["`+id+`"]}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}
