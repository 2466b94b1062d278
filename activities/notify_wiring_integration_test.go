package activities_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// The worker's wiring: with the dev stack's environment (JOINERY_NOTIFIER
// defaults to smtp) the Notify activity e-mails the person through the
// stack's Mailpit; JOINERY_NOTIFIER=file keeps the file inbox.
func TestIntegrationRunWiresTheNotifier(t *testing.T) {
	ep := stacktest.Ensure(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	load := func(extra map[string]string) config.Config {
		env := map[string]string{}
		for _, kv := range stack.Env(ep) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		cfg.PolicyFile = filepath.Join(repo, "testdata", "policy", "default.yaml")
		cfg.InboxDir = t.TempDir()
		return cfg
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	acts, err := run.Activities(ctx, load(nil), logger)
	require.NoError(t, err)
	require.IsType(t, activities.MailNotifier{}, acts.Notifier)
	require.IsType(t, activities.FileInbox{}, acts.Handover, "credential handover never goes by mail")

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := "wiring-" + hex.EncodeToString(b)
	require.NoError(t, acts.Notify(ctx, activities.Notification{To: "grace.hopper", HRISID: id, Kind: "reminder", Message: "joiner " + id + " still awaits your approval"}))
	var res struct {
		Messages []struct {
			ID      string
			Subject string
			To      []struct{ Address string }
		}
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(ep.MailpitAPIURL + "/api/v1/search?query=" + url.QueryEscape(`subject:"joiner `+id+`"`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&res) == nil && len(res.Messages) == 1
	}, 10*time.Second, 100*time.Millisecond, "the reminder reached Mailpit")
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, ep.MailpitAPIURL+"/api/v1/messages", strings.NewReader(`{"IDs":["`+res.Messages[0].ID+`"]}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	require.Equal(t, "Reminder: joiner "+id+" still awaits your approval", res.Messages[0].Subject)
	require.Equal(t, "grace.hopper@joinery.test", res.Messages[0].To[0].Address)

	acts, err = run.Activities(ctx, load(map[string]string{"JOINERY_NOTIFIER": "file"}), logger)
	require.NoError(t, err)
	require.IsType(t, activities.FileInbox{}, acts.Notifier)
}
