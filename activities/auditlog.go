package activities

// The audit export: Temporal forgets a closed joiner when the namespace's
// retention ends, but an access decision must stay answerable for years. So
// each joiner appends its events and outcome to an append-only JSON-lines
// file, hash-chained so that a changed, removed or reordered line is found
// by VerifyAuditLog.
//
// Line format (one JSON object per line, fields in this order):
//
//	{"chain":…,"prev":…,"key":…,"workflow":…,"run":…,"entry":{…},"hash":…}
//
//   - the first line of a file is the chain start: "chain" names the chain
//     (a random ID and the time it began), "prev" is empty, no entry;
//   - every later line's "prev" is the SHA-256 (hex) of the previous line's
//     bytes, so removing, inserting or reordering a line breaks the chain;
//   - "hash" is the SHA-256 of the line as written with "hash" empty, so a
//     change to the last line (which no successor covers) is found too, and
//     the verifier insists the line is exactly that canonical encoding, so
//     no byte (not even whitespace) can change unnoticed.
//
// The chain shows tampering by anyone who does not recompute it; someone
// who can rewrite the whole file can also rewrite the chain, and cutting
// lines off the end leaves a valid, shorter chain. AuditHead returns the
// head hash and line count, which an operator anchors elsewhere (a ticket,
// the log shipper, a WORM bucket) to close both gaps.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultAuditLog is where the export goes when JOINERY_AUDIT_LOG is unset.
const DefaultAuditLog = ".state/audit/joiners.jsonl"

// Length caps of what goes into the audit file: free text is capped so that
// a caller cannot grow the file without bound through one comment.
const (
	auditTextMax  = 1024
	auditNameMax  = 256
	auditListMax  = 64
	auditEntryMax = 256 // entries per ExportAudit call
)

// AuditEntry is one event or outcome of a joiner. Seq numbers a joiner's
// entries (assigned by the workflow, so deterministic): workflow ID + Seq is
// the entry's key, and an entry whose key is already in the file with the
// same content is not written again (a retried activity does not
// duplicate). The same key with other content is a re-run: the export ran
// as a local activity in a workflow task that was then lost, and the
// re-run of that task, having seen more (a rescind, a cancel), exported
// something else under the same numbers (workflows/localsteps.go). Both
// are kept — what the lost run exported did happen — the re-run's under
// the key <key>/rerun-<digest of the entry>.
type AuditEntry struct {
	Seq int       `json:"seq"`
	At  time.Time `json:"at"`
	// Kind is "event", "decision" or "outcome".
	Kind string `json:"kind"`
	// Text is the event's message (free text, sanitised).
	Text string `json:"text,omitempty"`
	// Actor is who acted (an approver, who rescinded), for decisions.
	Actor    string `json:"actor,omitempty"`
	Approved *bool  `json:"approved,omitempty"`
	// Comment and Reason are people's free text (sanitised).
	Comment string `json:"comment,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Outcome, Stage, PolicyVersion, Username, DN, Groups, Error describe
	// the joiner's result (outcome entries).
	Outcome       string   `json:"outcome,omitempty"`
	Stage         string   `json:"stage,omitempty"`
	PolicyVersion string   `json:"policyVersion,omitempty"`
	Username      string   `json:"username,omitempty"`
	DN            string   `json:"dn,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Error         string   `json:"error,omitempty"`
}

// ExportAuditInput is a batch of one joiner's entries.
type ExportAuditInput struct {
	// Key is the joiner's HRIS ID or non-human key.
	Key     string       `json:"key"`
	Entries []AuditEntry `json:"entries"`
}

// ExportAuditResult says how many entries were appended, how many of them
// were re-runs (a key already written with other content), how many were
// already in the file (a retry), and the head of the chain after them.
type ExportAuditResult struct {
	Appended int    `json:"appended"`
	Reruns   int    `json:"reruns,omitempty"`
	Present  int    `json:"present"`
	Head     string `json:"head"`
}

// rerunSep joins an entry key and the digest of a re-run's entry
// (AuditEntry). Keys are "<workflow ID>#<seq>"; Joinery's workflow IDs
// never hold a "/".
const rerunSep = "/rerun-"

// entryDigest is a short digest of an entry as written (sanitised): equal
// entries, equal digests.
func entryDigest(e AuditEntry) (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// ExportAudit appends the joiner's entries to the audit file (AuditLog; an
// empty AuditLog exports nothing). The caller must be the joiner itself
// (orders.go): the file is evidence, so no other workflow may write into a
// joiner's record. The workflow ID is the one Temporal reports, not one the
// input names.
func (a *Activities) ExportAudit(ctx context.Context, in ExportAuditInput) (ExportAuditResult, error) {
	o, err := a.admit(ctx, "export-audit", in.Key, fmt.Sprintf("append %d audit entries", len(in.Entries)))
	if err != nil {
		return ExportAuditResult{}, err
	}
	if a.AuditLog == "" {
		return ExportAuditResult{}, nil
	}
	if len(in.Entries) > auditEntryMax {
		return ExportAuditResult{}, a.refuse(o, fmt.Sprintf("%d entries in one export (at most %d)", len(in.Entries), auditEntryMax))
	}
	wf, run := JoinerWorkflowID(in.Key), ""
	if o.c.inActivity {
		wf, run = o.c.id, o.c.run
	}
	w, err := auditWriterFor(a.AuditLog)
	if err != nil {
		return ExportAuditResult{}, err
	}
	res, err := w.append(wf, run, in.Entries)
	if err != nil {
		// A full disk or a lost mount is worth retrying; the key index makes
		// the retry safe.
		return ExportAuditResult{}, fmt.Errorf("audit log %s: %w", a.AuditLog, err)
	}
	return res, nil
}

// auditLine is one line of the file. Field order is the wire order.
type auditLine struct {
	Chain    string      `json:"chain,omitempty"`
	Prev     string      `json:"prev"`
	Key      string      `json:"key,omitempty"`
	Workflow string      `json:"workflow,omitempty"`
	Run      string      `json:"run,omitempty"`
	Entry    *AuditEntry `json:"entry,omitempty"`
	Hash     string      `json:"hash"`
}

// encode returns the line's canonical bytes with its hash filled in.
func (l auditLine) encode() ([]byte, error) {
	l.Hash = ""
	body, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	l.Hash = hex.EncodeToString(sum[:])
	return json.Marshal(l)
}

func lineHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// auditWriter appends to one file. One per path per process (auditWriters);
// its mutex serialises this process's appends and flock serialises
// processes that share the file.
type auditWriter struct {
	mu   sync.Mutex
	path string
	// The key index: every key in the file, the offset read so far and
	// the hash of the last line. It is rebuilt from the file on first use
	// and caught up under the lock before each append (another process
	// may have appended), so the file stays the only source of truth and
	// a retry that lands on another worker on the same host is still
	// found. Reading only the tail would miss a retry that arrives after
	// other joiners' lines; a separate index file could drift from the
	// file it indexes.
	// keys maps each entry key (without a re-run suffix) to the digests
	// of the entries written under it: one, or more after re-runs.
	keys   map[string][]string
	offset int64
	last   string
}

var (
	auditWritersMu sync.Mutex
	auditWriters   = map[string]*auditWriter{}
)

func auditWriterFor(path string) (*auditWriter, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	auditWritersMu.Lock()
	defer auditWritersMu.Unlock()
	w := auditWriters[abs]
	if w == nil {
		w = &auditWriter{path: abs, keys: map[string][]string{}}
		auditWriters[abs] = w
	}
	return w, nil
}

func (w *auditWriter) append(workflow, run string, entries []AuditEntry) (ExportAuditResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(w.path), 0o700); err != nil {
		return ExportAuditResult{}, err
	}
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return ExportAuditResult{}, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return ExportAuditResult{}, fmt.Errorf("lock: %w", err)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	if err := w.catchUp(f); err != nil {
		return ExportAuditResult{}, err
	}
	var buf bytes.Buffer
	last := w.last
	var res ExportAuditResult
	if w.offset == 0 {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return res, err
		}
		b, err := auditLine{Chain: "joinery-audit/v1 " + hex.EncodeToString(id) + " " + time.Now().UTC().Format(time.RFC3339)}.encode()
		if err != nil {
			return res, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		last = lineHash(b)
	}
	type addedKey struct{ base, digest string }
	var adds []addedKey
	seen := func(base, digest string) (present, conflict bool) {
		ds := w.keys[base]
		for _, a := range adds {
			if a.base == base {
				ds = append(ds, a.digest)
			}
		}
		return slicesContains(ds, digest), len(ds) > 0
	}
	for _, e := range entries {
		e = sanitizeEntry(e)
		base := fmt.Sprintf("%s#%d", workflow, e.Seq)
		digest, err := entryDigest(e)
		if err != nil {
			return res, err
		}
		present, conflict := seen(base, digest)
		if present {
			res.Present++
			continue
		}
		key := base
		if conflict {
			key = base + rerunSep + digest
			res.Reruns++
		}
		b, err := auditLine{Prev: last, Key: key, Workflow: workflow, Run: run, Entry: &e}.encode()
		if err != nil {
			return res, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		last = lineHash(b)
		adds = append(adds, addedKey{base, digest})
	}
	if buf.Len() > 0 {
		// One write of whole lines with O_APPEND: a crash leaves at most
		// one torn last line, which the verifier reports.
		if _, err := f.Write(buf.Bytes()); err != nil {
			return res, err
		}
		if err := f.Sync(); err != nil {
			return res, err
		}
		if w.offset == 0 {
			syncDir(filepath.Dir(w.path))
		}
		w.offset += int64(buf.Len())
		w.last = last
		for _, a := range adds {
			w.keys[a.base] = append(w.keys[a.base], a.digest)
		}
	}
	res.Appended = len(adds)
	res.Head = w.last
	return res, nil
}

// catchUp reads what was appended since w.offset (everything, the first
// time), indexing keys and remembering the last line's hash.
func (w *auditWriter) catchUp(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < w.offset {
		return fmt.Errorf("the file shrank from %d to %d bytes since it was last read: refusing to append to a truncated audit log", w.offset, st.Size())
	}
	if st.Size() == w.offset {
		return nil
	}
	r := bufio.NewReader(io.NewSectionReader(f, w.offset, st.Size()-w.offset))
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return fmt.Errorf("the last line is incomplete (a torn write?): run VerifyAuditLog and repair by hand")
			}
			return nil
		}
		if err != nil {
			return err
		}
		w.offset += int64(len(line))
		line = bytes.TrimSuffix(line, []byte("\n"))
		var l auditLine
		if err := json.Unmarshal(line, &l); err != nil {
			return fmt.Errorf("line at byte %d is not JSON: %w", w.offset-int64(len(line))-1, err)
		}
		if l.Key != "" && l.Entry != nil {
			base, _, _ := strings.Cut(l.Key, rerunSep)
			d, err := entryDigest(*l.Entry)
			if err != nil {
				return err
			}
			w.keys[base] = append(w.keys[base], d)
		}
		w.last = lineHash(line)
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// VerifyAuditLog checks the file's chain: the first line starts a chain,
// each line is its canonical encoding with a correct self hash, and each
// later line's prev is the hash of the line before it. The error names the
// first line (1-based) that fails.
func VerifyAuditLog(path string) error {
	_, _, err := AuditHead(path)
	return err
}

// AuditHead verifies the file like VerifyAuditLog and returns the hash of
// its last line and its number of lines, the values to anchor outside the
// file (they reveal a cut-off tail, which a chain alone cannot).
func AuditHead(path string) (head string, lines int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	prev := ""
	keys := map[string]int{}
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(raw) > 0 {
				return "", 0, fmt.Errorf("%s: line %d: incomplete (no newline)", path, n)
			}
			if n == 1 {
				return "", 0, fmt.Errorf("%s: empty: no chain start", path)
			}
			return prev, n - 1, nil
		}
		if err != nil {
			return "", 0, err
		}
		raw = bytes.TrimSuffix(raw, []byte("\n"))
		var l auditLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return "", 0, fmt.Errorf("%s: line %d: not JSON: %v", path, n, err)
		}
		canon, err := l.encode()
		if err != nil {
			return "", 0, err
		}
		if !bytes.Equal(canon, raw) {
			return "", 0, fmt.Errorf("%s: line %d: changed (its content does not match its hash)", path, n)
		}
		switch {
		case n == 1 && (l.Chain == "" || l.Prev != "" || l.Entry != nil):
			return "", 0, fmt.Errorf("%s: line 1: not a chain start (lines removed or reordered at the top?)", path)
		case n > 1 && l.Chain != "":
			return "", 0, fmt.Errorf("%s: line %d: a second chain start", path, n)
		case n > 1 && l.Prev != prev:
			return "", 0, fmt.Errorf("%s: line %d: does not follow line %d (a line was removed, inserted or reordered)", path, n, n-1)
		case n > 1 && (l.Key == "" || l.Entry == nil):
			return "", 0, fmt.Errorf("%s: line %d: no entry", path, n)
		}
		if first, dup := keys[l.Key]; dup && l.Key != "" {
			return "", 0, fmt.Errorf("%s: line %d: key %s already on line %d", path, n, l.Key, first)
		}
		keys[l.Key] = n
		prev = lineHash(raw)
	}
}

// sanitizeEntry strips control and format characters (newlines, escapes,
// bidi overrides: what could forge a line or mislead a reader) from every
// string, redacts secret-shaped tokens in free text and caps lengths.
func sanitizeEntry(e AuditEntry) AuditEntry {
	e.Kind = clean(e.Kind, auditNameMax)
	e.Text = clean(redactSecrets(e.Text), auditTextMax)
	e.Comment = clean(redactSecrets(e.Comment), auditTextMax)
	e.Reason = clean(redactSecrets(e.Reason), auditTextMax)
	e.Error = clean(redactSecrets(e.Error), auditTextMax)
	e.Actor = clean(e.Actor, auditNameMax)
	e.Outcome = clean(e.Outcome, auditNameMax)
	e.Stage = clean(e.Stage, auditNameMax)
	e.PolicyVersion = clean(e.PolicyVersion, auditNameMax)
	e.Username = clean(e.Username, auditNameMax)
	e.DN = clean(e.DN, auditNameMax)
	if len(e.Groups) > auditListMax {
		e.Groups = e.Groups[:auditListMax]
	}
	groups := make([]string, 0, len(e.Groups))
	for _, g := range e.Groups {
		groups = append(groups, clean(g, auditNameMax))
	}
	if len(groups) == 0 {
		groups = nil
	}
	e.Groups = groups
	e.At = e.At.UTC()
	return e
}

// clean removes control and format characters and invalid UTF-8, turns
// them into nothing (a newline becomes a space, so words stay apart) and
// caps s at max runes, marking a cut with "…".
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == utf8.RuneError {
			continue
		}
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		} else if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			continue
		}
		if n == max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
