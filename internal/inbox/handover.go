package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/workflows"
)

// SignalHandoverAlarm is the signal the inbox sends to a running joiner
// whose wrapped credential was redeemed before its recipient redeemed it.
const SignalHandoverAlarm = workflows.SignalHandoverAlarm

// HandoverAlarm is the payload of SignalHandoverAlarm (the workflow's own
// type, so the two sides cannot drift). A response-wrapped token is single
// use: if Vault no longer knows a token that has not expired, someone else
// unwrapped it, and the credential must be treated as exposed. Accessor is
// set when the joiner's status names it (workloads).
type HandoverAlarm = workflows.HandoverAlarm

// ErrWrapInvalid is what Wrapping returns for a token Vault does not know:
// used, revoked or expired.
var ErrWrapInvalid = errors.New("wrapping token is not valid")

// WrapInfo is what Vault says about a wrapping token without spending it.
type WrapInfo struct {
	CreationTime time.Time
	TTL          time.Duration
	CreationPath string
}

// Wrapping looks up and redeems response-wrapping tokens. Both calls are
// authorised by the wrapping token itself: the inbox holds no Vault token.
type Wrapping interface {
	Lookup(ctx context.Context, token string) (WrapInfo, error)
	Unwrap(ctx context.Context, token string) (map[string]any, error)
}

// VaultWrapping is Wrapping against a Vault server.
type VaultWrapping struct{ Addr string }

// client returns a Vault client with no token of its own (VAULT_TOKEN from
// the environment is cleared): the wrapping token is the only credential.
func (v VaultWrapping) client() (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = v.Addr
	cfg.Timeout = 15 * time.Second
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.ClearToken()
	return c, nil
}

func wrapErr(op string, err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest {
		return ErrWrapInvalid
	}
	return fmt.Errorf("vault %s: %w", op, err)
}

// Lookup implements Wrapping (sys/wrapping/lookup).
func (v VaultWrapping) Lookup(ctx context.Context, token string) (WrapInfo, error) {
	c, err := v.client()
	if err != nil {
		return WrapInfo{}, err
	}
	sec, err := c.Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": token})
	if err != nil {
		return WrapInfo{}, wrapErr("wrapping lookup", err)
	}
	if sec == nil || sec.Data == nil {
		return WrapInfo{}, ErrWrapInvalid
	}
	var wi WrapInfo
	if s, ok := sec.Data["creation_time"].(string); ok {
		wi.CreationTime, _ = time.Parse(time.RFC3339Nano, s)
	}
	switch ttl := sec.Data["creation_ttl"].(type) {
	case json.Number:
		n, _ := ttl.Int64()
		wi.TTL = time.Duration(n) * time.Second
	case float64:
		wi.TTL = time.Duration(ttl) * time.Second
	}
	wi.CreationPath, _ = sec.Data["creation_path"].(string)
	return wi, nil
}

// Unwrap implements Wrapping (sys/wrapping/unwrap): it spends the token.
func (v VaultWrapping) Unwrap(ctx context.Context, token string) (map[string]any, error) {
	c, err := v.client()
	if err != nil {
		return nil, err
	}
	sec, err := c.Logical().UnwrapWithContext(ctx, token)
	if err != nil {
		return nil, wrapErr("unwrap", err)
	}
	if sec == nil {
		return nil, ErrWrapInvalid
	}
	return sec.Data, nil
}

// handoverName is the shape FileInbox gives recipients and joiner names;
// anything else (.., /, a hidden temp file) is not a handover token.
var handoverName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// wrapSeen remembers, per token digest, what an earlier lookup said (when it
// expires) and whether an alarm was raised, so a token that vanishes early
// is recognised as stolen and is reported once. Bounded.
type wrapSeen struct {
	mu  sync.Mutex
	m   map[[32]byte]*seenToken
	max int
}

type seenToken struct {
	expires time.Time
	alarmed bool
}

func newWrapSeen(max int) *wrapSeen { return &wrapSeen{m: map[[32]byte]*seenToken{}, max: max} }

func (ws *wrapSeen) get(token string) seenToken {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if t, ok := ws.m[sha256.Sum256([]byte(token))]; ok {
		return *t
	}
	return seenToken{}
}

func (ws *wrapSeen) update(token string, f func(*seenToken)) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	k := sha256.Sum256([]byte(token))
	t, ok := ws.m[k]
	if !ok {
		if len(ws.m) >= ws.max {
			for k := range ws.m { // drop any one: this is only a hint
				delete(ws.m, k)
				break
			}
		}
		t = &seenToken{}
		ws.m[k] = t
	}
	f(t)
}

// handoverItem is one waiting token as the handover page shows it.
type handoverItem struct {
	Joiner     string
	Delivered  time.Time
	Expires    time.Time
	State      string
	Redeemable bool
	Alarm      bool
}

// handoverRoot opens the signed-in person's own handover directory. os.Root
// confines every later open to it, so neither a crafted name nor a symlink
// planted in it can reach another person's tokens.
func (s *Server) handoverRoot(user string) (*os.Root, error) {
	if s.cfg.HandoverDir == "" || s.wrapping == nil {
		return nil, errHandoverOff
	}
	if !handoverName.MatchString(user) {
		return nil, fs.ErrNotExist
	}
	return os.OpenRoot(filepath.Join(s.cfg.HandoverDir, "handover", user))
}

var errHandoverOff = errors.New("credential handover is not configured")

func readToken(root *os.Root, name string) (string, fs.FileInfo, error) {
	f, err := root.Open(name)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fs.ErrNotExist
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", nil, err
	}
	return strings.TrimSpace(string(b)), fi, nil
}

func (s *Server) handoverPage(w http.ResponseWriter, r *http.Request, sess session, _ string) {
	root, err := s.handoverRoot(sess.user)
	if errors.Is(err, errHandoverOff) {
		s.message(w, http.StatusNotFound, &sess, "Not available", "Credential handover is not configured on this inbox.", "")
		return
	}
	var items []handoverItem
	if err == nil {
		defer root.Close()
		entries, _ := fs.ReadDir(root.FS(), ".")
		for _, e := range entries {
			joinerName, ok := strings.CutSuffix(e.Name(), ".token")
			if !ok || !e.Type().IsRegular() || !handoverName.MatchString(joinerName) {
				continue
			}
			tok, fi, err := readToken(root, e.Name())
			if err != nil || tok == "" {
				continue
			}
			items = append(items, s.inspect(r.Context(), sess.user, joinerName, tok, fi.ModTime()))
		}
	}
	s.render(w, http.StatusOK, "handover", s.page(sess, "Credential handover", items))
}

// inspect asks Vault about one token without spending it, and raises the
// alarm when a token that should still be valid is gone.
func (s *Server) inspect(ctx context.Context, user, joinerName, tok string, delivered time.Time) handoverItem {
	it := handoverItem{Joiner: joinerName, Delivered: delivered}
	wi, err := s.wrapping.Lookup(ctx, tok)
	switch {
	case err == nil:
		it.Expires = wi.CreationTime.Add(wi.TTL)
		if wi.CreationTime.IsZero() {
			it.Expires = time.Time{}
		}
		s.seen.update(tok, func(t *seenToken) { t.expires = it.Expires })
		it.State, it.Redeemable = "waiting for you", true
	case errors.Is(err, ErrWrapInvalid):
		s.tokenGone(ctx, user, joinerName, tok, delivered, &it)
	default:
		s.log.Error("handover: Vault lookup failed", "joiner", joinerName, "err", err)
		it.State = "Vault is not answering; try again"
	}
	return it
}

// tokenGone decides what a token Vault does not know means. Expired, or
// revoked by the joiner's own rollback: nothing to fear. Otherwise it was
// redeemed by someone who is not its recipient.
func (s *Server) tokenGone(ctx context.Context, user, joinerName, tok string, delivered time.Time, it *handoverItem) {
	now := s.now()
	wfID := workflows.JoinerWorkflowID(joinerName)
	seen := s.seen.get(tok)
	expires := seen.expires
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	j, jerr := s.load(lctx, wfID)
	cancel()
	if expires.IsZero() && jerr == nil {
		expires = expectedExpiry(j.Status, delivered)
	}
	it.Expires = expires
	if jerr == nil && credentialUndone(j.Status) {
		it.State = "revoked (the joiner rolled back)"
		return
	}
	if expires.IsZero() {
		it.State = "no longer valid (expired or already used)"
		s.security("handover token invalid and its expiry unknown", "recipient", user, "joiner", joinerName)
		return
	}
	if !now.Before(expires) {
		it.State = "expired"
		return
	}
	it.Alarm = true
	it.State = "already unwrapped — possible interception"
	if seen.alarmed {
		return
	}
	s.seen.update(tok, func(t *seenToken) { t.alarmed = true })
	alarm := HandoverAlarm{Recipient: user, DetectedAt: now.UTC()}
	if jerr == nil && j.Status.Workload != nil && j.Status.Workload.DeliveredTo == user {
		alarm.Accessor = j.Status.Workload.WrapAccessor
	}
	s.security("handover token redeemed before its recipient: possible interception",
		"recipient", user, "joiner", joinerName, "workflow", wfID, "accessor", alarm.Accessor, "expires", expires)
	if jerr == nil && j.Running {
		if err := s.temporal.SignalWorkflow(ctx, wfID, "", SignalHandoverAlarm, alarm); err != nil {
			s.log.Error("handover: alarm signal failed", "workflow", wfID, "err", err)
		}
	}
}

// expectedExpiry is when a token delivered at delivered should expire, from
// the joiner's own record: the workload's ExpiresAt, or the plan's wrapping
// TTL counted from the delivery (the token file's modification time).
func expectedExpiry(st workflows.Status, delivered time.Time) time.Time {
	if st.Workload != nil && !st.Workload.ExpiresAt.IsZero() {
		return st.Workload.ExpiresAt
	}
	if st.Plan != nil {
		if st.Plan.Workload != nil && st.Plan.Workload.WrapTTL > 0 {
			return delivered.Add(st.Plan.Workload.WrapTTL)
		}
		if st.Plan.CredentialTTL > 0 {
			return delivered.Add(st.Plan.CredentialTTL)
		}
	}
	return time.Time{}
}

// credentialUndone says whether the joiner's rollback revoked its secret.
func credentialUndone(st workflows.Status) bool {
	return slices.ContainsFunc(st.Resources, func(r workflows.Resource) bool {
		return strings.HasPrefix(r.Kind, "vault") && r.UndoneAt != nil
	})
}

// credentialField is one value of an unwrapped credential.
type credentialField struct{ Name, Value string }

func (s *Server) unwrapPost(w http.ResponseWriter, r *http.Request, sess session, _ string) {
	joinerName := r.PathValue("joiner")
	root, err := s.handoverRoot(sess.user)
	if err != nil || !handoverName.MatchString(joinerName) {
		if root != nil {
			root.Close()
		}
		s.message(w, http.StatusNotFound, &sess, "Not found", "No credential is waiting for you under that name.", "")
		return
	}
	defer root.Close()
	name := joinerName + ".token"
	tok, fi, err := readToken(root, name)
	if err != nil || tok == "" {
		s.message(w, http.StatusNotFound, &sess, "Not found", "No credential is waiting for you under that name.", "")
		return
	}
	data, err := s.wrapping.Unwrap(r.Context(), tok)
	if errors.Is(err, ErrWrapInvalid) {
		var it handoverItem
		s.tokenGone(r.Context(), sess.user, joinerName, tok, fi.ModTime(), &it)
		code := http.StatusGone
		if it.Alarm {
			code = http.StatusConflict
		}
		s.message(w, code, &sess, "Not redeemable", "This credential cannot be unwrapped: "+it.State+".", "")
		return
	}
	if err != nil {
		s.log.Error("handover: unwrap failed", "joiner", joinerName, "err", err)
		s.message(w, http.StatusServiceUnavailable, &sess, "Unavailable", "Vault is not answering; the credential is still waiting. Try again.", "")
		return
	}
	// Spent: the file is useless now, and leaving it would only invite a
	// false alarm on the next visit.
	if err := root.Remove(name); err != nil {
		s.log.Error("handover: could not delete the spent token file", "joiner", joinerName, "err", err)
	}
	s.log.Info("credential unwrapped by its recipient", "recipient", sess.user, "joiner", joinerName)
	s.render(w, http.StatusOK, "credential", s.page(sess, "Credential", map[string]any{"Joiner": joinerName, "Fields": credentialFields(data)}))
}

// credentialFields flattens what Vault returned: a KV v2 read carries the
// values under data, an AppRole SecretID at the top level.
func credentialFields(data map[string]any) []credentialField {
	if inner, ok := data["data"].(map[string]any); ok {
		data = inner
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]credentialField, 0, len(keys))
	for _, k := range keys {
		out = append(out, credentialField{Name: k, Value: fmt.Sprint(data[k])})
	}
	return out
}
