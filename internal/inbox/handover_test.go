package inbox

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/workflows"
)

// deliver puts a token where activities.FileInbox would.
func (e *env) deliver(recipient, joinerName, token string, at time.Time) string {
	e.t.Helper()
	dir := filepath.Join(e.handover, "handover", recipient)
	require.NoError(e.t, os.MkdirAll(dir, 0o700))
	p := filepath.Join(dir, joinerName+".token")
	require.NoError(e.t, os.WriteFile(p, []byte(token+"\n"), 0o600))
	require.NoError(e.t, os.Chtimes(p, at, at))
	return p
}

func TestHandoverShowsOnlyMyTokensAndUnwrapsOnce(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.wrapping.tokens["tok-200"] = fakeWrapped{created: now.Add(-time.Hour), ttl: 72 * time.Hour,
		data: map[string]any{"data": map[string]any{"password": "S3cret-Initial"}, "metadata": map[string]any{"version": 1}}}
	e.wrapping.tokens["tok-201"] = fakeWrapped{created: now, ttl: time.Hour, data: map[string]any{"password": "graces"}}
	mine := e.deliver("ada.lovelace", "200", "tok-200", now.Add(-time.Hour))
	theirs := e.deliver("grace.hopper", "201", "tok-201", now)
	// A symlink planted in ada's directory pointing at grace's token.
	require.NoError(t, os.Symlink(theirs, filepath.Join(e.handover, "handover", "ada.lovelace", "201.token")))

	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	p := b.get("/handover")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, ">200<")
	require.Contains(t, p.Body, "waiting for you")
	require.Contains(t, p.Body, "2026-12-04 08:00 UTC", "expiry from Vault's lookup")
	require.NotContains(t, p.Body, ">201<", "grace's token is not ada's, even through a symlink")
	require.NotContains(t, p.Body, "S3cret", "listing never unwraps")
	csrf := csrfOf(t, p)

	for _, name := range []string{"201", "..%2fgrace.hopper%2f201", "..", ".200.tmp"} {
		r := b.post("/handover/"+name+"/unwrap", url.Values{"csrf": {csrf}})
		require.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest, http.StatusTemporaryRedirect}, r.Code, name)
	}
	_, ok := e.wrapping.tokens["tok-201"]
	require.True(t, ok, "grace's token is untouched")

	require.Equal(t, http.StatusForbidden, b.post("/handover/200/unwrap", url.Values{}).Code, "unwrapping needs the CSRF token")
	r := b.post("/handover/200/unwrap", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusOK, r.Code, r.Body)
	require.Contains(t, r.Body, "S3cret-Initial")
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	_, err := os.Stat(mine)
	require.ErrorIs(t, err, os.ErrNotExist, "the spent token file is gone")
	require.NotContains(t, b.get("/handover").Body, ">200<")
	require.Equal(t, http.StatusNotFound, b.post("/handover/200/unwrap", url.Values{"csrf": {csrf}}).Code, "only once")
}

// The adversary: whoever read the token file (or the message carrying it)
// and redeemed it first.
func TestHandoverAlarmWhenRedeemedBeforeItsRecipient(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	j := awaiting(t, "202")
	j.status.Stage = workflows.StageCompleted
	j.status.Plan.CredentialTTL = 72 * time.Hour
	e.temporal.put("joiner-202", j)
	e.deliver("ada.lovelace", "202", "tok-stolen", now.Add(-2*time.Hour))
	expired := awaiting(t, "203")
	expired.status.Plan.CredentialTTL = 72 * time.Hour
	e.temporal.put("joiner-203", expired)
	e.deliver("ada.lovelace", "203", "tok-old", now.Add(-100*time.Hour))

	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	p := b.get("/handover")
	require.Contains(t, p.Body, "already unwrapped — possible interception")
	require.Contains(t, p.Body, "expired")
	_, sigs := e.temporal.sent()
	require.Len(t, sigs, 1, "one alarm, for the token that should still be valid")
	require.Equal(t, "joiner-202", sigs[0].ID)
	require.Equal(t, SignalHandoverAlarm, sigs[0].Name)
	alarm := sigs[0].Arg.(HandoverAlarm)
	require.Equal(t, "ada.lovelace", alarm.Recipient)
	require.Equal(t, now, alarm.DetectedAt)

	b.get("/handover")
	_, sigs = e.temporal.sent()
	require.Len(t, sigs, 1, "reported once, not on every visit")

	r := b.post("/handover/202/unwrap", url.Values{"csrf": {csrfOf(t, p)}})
	require.Equal(t, http.StatusConflict, r.Code)
	require.Contains(t, r.Body, "possible interception")
}

func TestHandoverAlarmUsesTheExpiryVaultReportedEarlier(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.wrapping.tokens["tok-9"] = fakeWrapped{created: now, ttl: 24 * time.Hour}
	e.deliver("ada.lovelace", "9", "tok-9", now)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	require.Contains(t, b.get("/handover").Body, "waiting for you")
	delete(e.wrapping.tokens, "tok-9") // someone else unwraps it
	// No joiner answers for it, yet the expiry seen earlier says it was stolen.
	require.Contains(t, b.get("/handover").Body, "possible interception")
	_, sigs := e.temporal.sent()
	require.Empty(t, sigs, "no running joiner to tell; logged as a security event")
}
