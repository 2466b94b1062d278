package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/audit"
	"github.com/joinery/joinery/internal/codec"
	"github.com/joinery/joinery/workflows"
)

// person is a hire whose every identifying value is unique to this run, so
// finding one in a history can only mean it leaked.
type person struct{ first, last, title string }

func newPerson() person {
	letters := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rand.IntN(26))
		}
		return string(b)
	}
	return person{
		first: "Ysolde" + letters(4),
		last:  "Quennell" + letters(4),
		title: "Cryptographer " + strings.ToUpper(letters(6)),
	}
}

// hirePerson enters p in the reference HRIS and cleans up after the test,
// like Harness.HireOn but with p's job title.
func (h *Harness) hirePerson(p person) string {
	h.t.Helper()
	id, err := AddEmployee(context.Background(), h.EP, map[string]string{
		"firstName": p.first, "lastName": p.last, "department": "Engineering", "jobTitle": p.title,
		"location": "DE-Berlin", "supervisorEId": "100", "hireDate": time.Now().Format(time.DateOnly),
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
	require.NoError(h.t, err)
	h.t.Cleanup(func() { h.cleanup(id, false) })
	return id
}

// rawClient reaches the same Temporal without the codec: what the server
// stores, and what anyone without the key sees.
func rawClient(t *testing.T, h *Harness) client.Client {
	t.Helper()
	c, err := client.DialContext(context.Background(), client.Options{
		HostPort: h.Cfg.TemporalAddress, Namespace: h.Cfg.TemporalNamespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func events(t *testing.T, c client.Client, wfID string) []*historypb.HistoryEvent {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

// requireNoPersonalData scans a raw history — its proto JSON and the
// decoded bytes of every payload — for p's values, in any letter case.
func requireNoPersonalData(t *testing.T, history string, values ...string) {
	t.Helper()
	low := strings.ToLower(history)
	for _, v := range values {
		require.NotContains(t, low, strings.ToLower(v), "the raw history holds %q in clear", v)
	}
}

// A completed joiner's history, read without the key, holds none of the
// joiner's personal data; the codec client, the audit record, the codec
// server and the temporal CLI with --codec-endpoint all read it back.
func TestIntegrationHistoryIsEncrypted(t *testing.T) {
	h := NewHarness(t)
	require.NotEmpty(t, h.Cfg.CodecKeysFile, "the dev stack's environment turns payload encryption on")
	raw := rawClient(t, h)
	p := newPerson()
	id := h.hirePerson(p)
	h.Start(id)
	h.ApproveWhenAsked(id)
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome)
	email := res.Username + "@joinery.test"
	wfID := workflows.JoinerWorkflowID(id)

	rawHistory := historyJSON(t, raw, wfID)
	requireNoPersonalData(t, rawHistory, p.first, p.last, p.title, email, res.Username)
	require.Contains(t, rawHistory, base64.StdEncoding.EncodeToString([]byte(codec.EncodingEncrypted)),
		"payloads are marked as encrypted")

	// Through the codec client everything is readable: the same history
	// holds the name, and the audit record is built from it.
	clear := historyJSON(t, h.C, wfID)
	require.Contains(t, clear, p.first)
	require.Contains(t, clear, p.title)
	rec, err := audit.Build(context.Background(), h.C, wfID)
	require.NoError(t, err)
	require.Equal(t, id, rec.Input.HRISID)
	require.NotNil(t, rec.Result)
	require.Equal(t, res.Username, rec.Result.Username)

	// The codec server decodes the started event's input for an operator
	// with the token, and refuses anyone without it.
	srvHandler, err := codec.NewServerFromConfig(context.Background(), h.Cfg, nil)
	require.NoError(t, err)
	var refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		srvHandler.ServeHTTP(rec, r)
		if rec.Code == http.StatusUnauthorized {
			refused.Add(1)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	var sealed []*commonpb.Payload
	for _, ev := range events(t, raw, wfID) {
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			sealed = append(sealed, a.GetResult().GetPayloads()...)
		}
		// Local activities (the planning reads) record their results in
		// markers: sealed by the same codec.
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil {
			for _, d := range m.GetDetails() {
				sealed = append(sealed, d.GetPayloads()...)
			}
		}
	}
	require.NotEmpty(t, sealed)
	for _, pl := range sealed {
		require.Equal(t, codec.EncodingEncrypted, string(pl.GetMetadata()["encoding"]))
	}
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	require.NoError(t, err)
	post := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", h.Cfg.TemporalNamespace)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, out := post("Bearer " + h.Cfg.CodecToken)
	require.Equal(t, http.StatusOK, code, out)
	var decoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(out), &decoded))
	var all strings.Builder
	for _, pl := range decoded.GetPayloads() {
		require.NotEqual(t, codec.EncodingEncrypted, string(pl.GetMetadata()["encoding"]))
		all.Write(pl.GetData())
	}
	require.Contains(t, all.String(), p.first, "the HR record fetched by the first activity")
	code, out = post("")
	require.Equal(t, http.StatusUnauthorized, code)
	require.NotContains(t, out, p.first)
	code, _ = post("Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, code)

	// The temporal CLI, as an operator runs it, decodes through the server.
	temporalBin := filepath.Join(h.EP.BinDir, "temporal")
	show := func(extra ...string) (string, error) {
		args := append([]string{"workflow", "show", "--workflow-id", wfID, "--address", h.Cfg.TemporalAddress,
			"--namespace", h.Cfg.TemporalNamespace, "--output", "json", "--codec-endpoint", srv.URL}, extra...)
		b, err := exec.Command(temporalBin, args...).CombinedOutput()
		return string(b), err
	}
	out, err = show("--codec-auth", "Bearer "+h.Cfg.CodecToken)
	require.NoError(t, err, "temporal workflow show: %.2000s", out)
	// The CLI prints decoded payloads as (pretty-printed) base64 of their JSON.
	cliPayloads := func(out string) string { return decodePayloads(strings.ReplaceAll(out, `"data": "`, `"data":"`)) }
	require.True(t, strings.Contains(cliPayloads(out), p.first), "the CLI shows the decoded HR record")
	before := refused.Load()
	// The CLI retries a failing codec until its timeout; a short one keeps
	// the test quick.
	out, err = show("--command-timeout", "3s")
	require.Error(t, err, "without credentials the CLI cannot decode")
	require.False(t, strings.Contains(out+cliPayloads(out), p.first), "nothing decoded without credentials")
	require.Greater(t, refused.Load(), before, "the codec server refused the CLI without credentials")
}

// A failure's message may name a person: it is sealed like any payload, and
// the codec client (and so the audit record) still reads it.
func TestIntegrationFailureMessagesAreEncrypted(t *testing.T) {
	h := NewHarness(t)
	raw := rawClient(t, h)
	p := newPerson()
	id := h.hirePerson(p)
	h.FailAt(id, activities.StepGrant)
	h.Start(id)
	h.ApproveWhenAsked(id)
	res, err := h.Result(id)
	require.Error(t, err)
	require.NotNil(t, res)
	require.Equal(t, workflows.OutcomeFailed, res.Outcome)
	wfID := workflows.JoinerWorkflowID(id)

	rawHistory := historyJSON(t, raw, wfID)
	requireNoPersonalData(t, rawHistory, p.first, p.last, p.title)
	require.NotContains(t, rawHistory, "injected failure", "failure messages are sealed")
	// A step's failure is in its activity's failed event or, for a step run
	// as a local activity (workflows/localsteps.go), in its marker.
	failures := func(c client.Client) []string {
		var out []string
		for _, ev := range events(t, c, wfID) {
			if a := ev.GetActivityTaskFailedEventAttributes(); a != nil {
				out = append(out, a.GetFailure().GetMessage())
			}
			if f := ev.GetMarkerRecordedEventAttributes().GetFailure(); f != nil {
				out = append(out, f.GetMessage())
			}
		}
		return out
	}
	rawFailures, clearFailures := failures(raw), failures(h.C)
	require.NotEmpty(t, rawFailures)
	for _, m := range rawFailures {
		require.Equal(t, "Encoded failure", m)
	}
	require.Contains(t, strings.Join(clearFailures, "\n"), "injected failure at "+activities.StepGrant)

	rec, err := audit.Build(context.Background(), h.C, wfID)
	require.NoError(t, err)
	var failed []string
	for _, e := range rec.Timeline {
		if e.Kind == "failed" {
			failed = append(failed, e.Detail)
		}
	}
	require.Contains(t, strings.Join(failed, "\n"), "injected failure at "+activities.StepGrant, "the audit record shows the decoded message")
}
