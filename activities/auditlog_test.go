package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func auditFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "audit", "joiners.jsonl")
}

func entries(n int) []AuditEntry {
	at := time.Date(2027, 1, 10, 9, 0, 0, 0, time.UTC)
	out := make([]AuditEntry, n)
	for i := range out {
		out[i] = AuditEntry{Seq: i + 1, At: at.Add(time.Duration(i) * time.Minute), Kind: "event", Text: fmt.Sprintf("step %d", i+1)}
	}
	return out
}

func exportN(t *testing.T, path, key string, n int) {
	t.Helper()
	a := &Activities{AuditLog: path}
	res, err := a.ExportAudit(context.Background(), ExportAuditInput{Key: key, Entries: entries(n)})
	require.NoError(t, err)
	require.Equal(t, n, res.Appended)
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(bytes.TrimSuffix(l, []byte("\n")))
		b.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
}

func TestAuditChainVerifies(t *testing.T) {
	path := auditFile(t)
	exportN(t, path, "200", 3)
	exportN(t, path, "201", 2)
	head, n, err := AuditHead(path)
	require.NoError(t, err)
	require.Equal(t, 6, n, "chain start + 5 entries")
	require.Len(t, head, 64)
	lines := readLines(t, path)
	require.Contains(t, string(lines[0]), `"chain":"joinery-audit/v1 `, "the first line names the chain start")
	var l auditLine
	require.NoError(t, json.Unmarshal(lines[1], &l))
	require.Equal(t, "joiner-200#1", l.Key)
	require.Equal(t, lineHash(bytes.TrimSuffix(lines[0], []byte("\n"))), l.Prev)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

// Any byte changed, a line removed (first, middle or the last but one) or
// two lines swapped: the verifier says so.
func TestAuditTamperingIsDetected(t *testing.T) {
	path := auditFile(t)
	exportN(t, path, "200", 4)
	orig := readLines(t, path)
	flat := bytes.Join(orig, nil)
	for i := 0; i < len(flat); i++ {
		if flat[i] == '\n' {
			continue
		}
		mut := bytes.Clone(flat)
		mut[i] ^= 0x01
		require.NoError(t, os.WriteFile(path, mut, 0o600))
		require.Error(t, VerifyAuditLog(path), "byte %d (%q) flipped", i, flat[i])
	}
	for drop := 0; drop < len(orig)-1; drop++ {
		var ls [][]byte
		ls = append(ls, orig[:drop]...)
		ls = append(ls, orig[drop+1:]...)
		writeLines(t, path, ls)
		require.Error(t, VerifyAuditLog(path), "line %d removed", drop+1)
	}
	for i := 0; i+1 < len(orig); i++ {
		ls := append([][]byte(nil), orig...)
		ls[i], ls[i+1] = ls[i+1], ls[i]
		writeLines(t, path, ls)
		require.Error(t, VerifyAuditLog(path), "lines %d and %d swapped", i+1, i+2)
	}
	writeLines(t, path, orig)
	require.NoError(t, VerifyAuditLog(path))
}

// Cutting off the tail leaves a valid chain; the head and count anchored
// elsewhere reveal it.
func TestAuditHeadRevealsACutTail(t *testing.T) {
	path := auditFile(t)
	exportN(t, path, "200", 3)
	head, n, err := AuditHead(path)
	require.NoError(t, err)
	lines := readLines(t, path)
	writeLines(t, path, lines[:len(lines)-1])
	head2, n2, err := AuditHead(path)
	require.NoError(t, err)
	require.NotEqual(t, head, head2)
	require.Equal(t, n-1, n2)
}

func TestAuditConcurrentAppendsKeepAValidChain(t *testing.T) {
	path := auditFile(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &Activities{AuditLog: path}
			for i := range 5 {
				_, err := a.ExportAudit(context.Background(), ExportAuditInput{Key: fmt.Sprint(300 + g),
					Entries: []AuditEntry{{Seq: i + 1, At: time.Now(), Kind: "event", Text: "concurrent"}}})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, n, err := AuditHead(path)
	require.NoError(t, err)
	require.Equal(t, 1+20*5, n)
}

// A retried export (the activity ran, its answer was lost) appends nothing
// again, also when another joiner wrote in between and when the process
// restarted (the index is rebuilt from the file).
func TestAuditRetryDoesNotDuplicate(t *testing.T) {
	path := auditFile(t)
	a := &Activities{AuditLog: path}
	in := ExportAuditInput{Key: "200", Entries: entries(3)}
	_, err := a.ExportAudit(context.Background(), in)
	require.NoError(t, err)
	exportN(t, path, "201", 2)
	res, err := a.ExportAudit(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, ExportAuditResult{Appended: 0, Present: 3, Head: res.Head}, res)

	// A new process: forget the writer, so its index comes from the file.
	auditWritersMu.Lock()
	delete(auditWriters, path)
	auditWritersMu.Unlock()
	in.Entries = append(in.Entries, AuditEntry{Seq: 4, Kind: "outcome", Outcome: "completed"})
	res, err = a.ExportAudit(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, 1, res.Appended)
	require.Equal(t, 3, res.Present)
	_, n, err := AuditHead(path)
	require.NoError(t, err)
	require.Equal(t, 1+3+2+1, n)
}

// A re-run of a lost workflow task exports other content under numbers the
// lost run already used (workflows/localsteps.go): both are kept, the
// re-run's under a key of its own, and a retry of either is still found —
// by this writer and by a new process reading the file.
func TestAuditRerunKeepsBothRuns(t *testing.T) {
	path := auditFile(t)
	a := &Activities{AuditLog: path}
	at := time.Date(2027, 1, 10, 9, 0, 0, 0, time.UTC)
	lost := ExportAuditInput{Key: "200", Entries: []AuditEntry{
		{Seq: 1, At: at, Kind: "decision", Actor: "ada.lovelace"},
		{Seq: 2, At: at, Kind: "outcome", Outcome: "completed", Stage: "Completed"}}}
	rerun := ExportAuditInput{Key: "200", Entries: []AuditEntry{
		{Seq: 1, At: at, Kind: "decision", Actor: "ada.lovelace"},
		{Seq: 2, At: at, Kind: "event", Text: "offer rescinded by hr.partner"},
		{Seq: 3, At: at, Kind: "outcome", Outcome: "rescinded", Stage: "Rescinded"}}}
	_, err := a.ExportAudit(context.Background(), lost)
	require.NoError(t, err)
	res, err := a.ExportAudit(context.Background(), rerun)
	require.NoError(t, err)
	require.Equal(t, 2, res.Appended, "#2 (other content) and #3")
	require.Equal(t, 1, res.Reruns)
	require.Equal(t, 1, res.Present, "#1 is the same decision")
	for _, fresh := range []bool{false, true} {
		if fresh {
			auditWritersMu.Lock()
			delete(auditWriters, path)
			auditWritersMu.Unlock()
		}
		for _, in := range []ExportAuditInput{lost, rerun} {
			res, err := a.ExportAudit(context.Background(), in)
			require.NoError(t, err)
			require.Zero(t, res.Appended, "a retry of either run adds nothing (fresh process: %v)", fresh)
		}
	}
	require.NoError(t, VerifyAuditLog(path))
	var keys []string
	for _, l := range readLines(t, path)[1:] {
		var line auditLine
		require.NoError(t, json.Unmarshal(bytes.TrimSpace(l), &line))
		keys = append(keys, line.Key)
	}
	require.Len(t, keys, 4)
	require.Equal(t, []string{"joiner-200#1", "joiner-200#2"}, keys[:2])
	require.True(t, strings.HasPrefix(keys[2], "joiner-200#2/rerun-"), keys[2])
	require.Equal(t, "joiner-200#3", keys[3])
}

// Free text cannot forge a line, hide behind control characters, grow
// without bound or carry a token.
func TestAuditSanitisesFreeText(t *testing.T) {
	path := auditFile(t)
	a := &Activities{AuditLog: path}
	_, err := a.ExportAudit(context.Background(), ExportAuditInput{Key: "200", Entries: []AuditEntry{{
		Seq: 1, Kind: "decision", Actor: "ada\x1b[31m.lovelace", Comment: "ok\n{\"forged\":true}\u202e " + strings.Repeat("ab ", 2000),
		Reason: "token hvs.CAESIJlongsecretvalue1234567890 leaked",
	}}})
	require.NoError(t, err)
	require.NoError(t, VerifyAuditLog(path))
	lines := readLines(t, path)
	require.Len(t, lines, 2)
	var l auditLine
	require.NoError(t, json.Unmarshal(lines[1], &l))
	require.Equal(t, "ada[31m.lovelace", l.Entry.Actor)
	require.True(t, strings.HasPrefix(l.Entry.Comment, `ok {"forged":true} ab ab`), l.Entry.Comment)
	require.LessOrEqual(t, len([]rune(l.Entry.Comment)), auditTextMax+1)
	require.NotContains(t, l.Entry.Reason, "hvs.CAESI")
}

// Only the joiner itself may write its record.
func TestAuditExportRefusesAnotherWorkflow(t *testing.T) {
	path := auditFile(t)
	a := &Activities{AuditLog: path}
	requireRefused(t, runAs(t, a, "Evil", "joiner-200", a.ExportAudit, ExportAuditInput{Key: "200", Entries: entries(1)}, nil))
	requireRefused(t, runAs(t, a, JoinerWorkflowType, "joiner-201", a.ExportAudit, ExportAuditInput{Key: "200", Entries: entries(1)}, nil))
	require.NoFileExists(t, path)
	var res ExportAuditResult
	require.NoError(t, runAs(t, a, JoinerWorkflowType, "joiner-200", a.ExportAudit, ExportAuditInput{Key: "200", Entries: entries(2)}, &res))
	require.Equal(t, 2, res.Appended)
	require.NoError(t, VerifyAuditLog(path))
}
