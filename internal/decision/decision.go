// Package decision is the one place that signs and verifies approval
// decisions. The approval inbox signs what a signed-in person decided with an
// Ed25519 key only it holds; the Joiner workflow verifies the signature with
// the public keys recorded in its own history, so the proof is checked inside
// the governed runtime and replays deterministically.
//
// What is signed is the exact payload bytes (canonical JSON of Decision, made
// once by the signer), not a re-encoding: the verifier never has to rebuild
// the bytes, so no JSON or time-zone subtlety can make a valid signature fail
// or an altered decision pass.
//
// Verification is pure (no clock, no I/O): the caller passes the time and the
// set of nonces already used, which in a workflow are workflow.Now and the
// workflow's own state.
package decision

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Action is what was decided.
type Action string

// Actions a person can sign.
const (
	ActionApprove Action = "approve"
	ActionReject  Action = "reject"
	// ActionExtend moves the end date of time-bound access (Decision.EndDate).
	ActionExtend Action = "extend"
)

// FormatVersion is the version of the Decision payload format.
const FormatVersion = 1

// domain separates Joinery decision signatures from any other use of the key.
const domain = "joinery-decision-v1\n"

// MaxCommentLen bounds the free text a decision may carry, so a decision
// cannot be used to grow workflow history.
const MaxCommentLen = 1000

// Decision is what a person decided about one joiner, as the inbox signs it.
type Decision struct {
	Version int `json:"v"`
	// WorkflowID is the joiner the decision is for; RunID its run, so a
	// decision captured from one run cannot count in another run that
	// reuses the workflow ID (a restarted joiner, or a rogue workflow
	// started under the ID to collect a manager's signature).
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId,omitempty"`
	// PlanHash and PolicyVersion bind the decision to what the approver was
	// shown: a changed plan makes it count for nothing.
	PlanHash      string `json:"planHash"`
	PolicyVersion string `json:"policyVersion"`
	// Approver is the directory username that signed in and decided.
	Approver string `json:"approver"`
	Action   Action `json:"action"`
	// EndDate is the new end date (YYYY-MM-DD) of an extend decision.
	EndDate string `json:"endDate,omitempty"`
	Comment string `json:"comment,omitempty"`
	// IssuedAt is when the inbox signed; the workflow refuses stale ones.
	IssuedAt time.Time `json:"issuedAt"`
	// Nonce makes every decision unique; the workflow refuses a replay.
	Nonce string `json:"nonce"`
	// Via is the inbox path: inbox-web or inbox-api.
	Via string `json:"via,omitempty"`
}

// Signed is a decision with its signature: what travels in the approve,
// reject and extend signals and in the decide update.
type Signed struct {
	// KeyID names the signing key (see KeyID).
	KeyID string `json:"keyId"`
	// Payload is the canonical JSON of the Decision, exactly as signed.
	Payload []byte `json:"payload"`
	// Signature is Ed25519 over the domain prefix and Payload.
	Signature []byte `json:"signature"`
}

// PublicKey is one key the worker accepts decisions from.
type PublicKey struct {
	ID  string `json:"id"`
	Key []byte `json:"key"` // 32-byte Ed25519 public key
}

// KeyID derives a key's ID from the public key itself, so an ID can never
// point at a different key than the one it names.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// message is what the signature covers.
func message(payload []byte) []byte {
	return append([]byte(domain), payload...)
}

// Validate checks a decision's own fields, before it is signed and again
// after it is verified.
func (d Decision) Validate() error {
	var problems []string
	if d.Version != FormatVersion {
		problems = append(problems, fmt.Sprintf("format version %d, want %d", d.Version, FormatVersion))
	}
	if d.WorkflowID == "" {
		problems = append(problems, "workflowId is empty")
	}
	if d.PlanHash == "" {
		problems = append(problems, "planHash is empty")
	}
	if strings.TrimSpace(d.Approver) == "" {
		problems = append(problems, "approver is empty")
	}
	switch d.Action {
	case ActionApprove, ActionReject:
		if d.EndDate != "" {
			problems = append(problems, "endDate is only for extend")
		}
	case ActionExtend:
		if _, err := time.Parse(time.DateOnly, d.EndDate); err != nil {
			problems = append(problems, fmt.Sprintf("endDate %q is not YYYY-MM-DD", d.EndDate))
		}
	default:
		problems = append(problems, fmt.Sprintf("action %q: want approve, reject or extend", d.Action))
	}
	if len(d.Comment) > MaxCommentLen {
		problems = append(problems, fmt.Sprintf("comment is %d bytes, at most %d", len(d.Comment), MaxCommentLen))
	}
	if d.IssuedAt.IsZero() {
		problems = append(problems, "issuedAt is missing")
	}
	if len(d.Nonce) < 16 {
		problems = append(problems, "nonce is missing or shorter than 16 characters")
	}
	if len(problems) > 0 {
		return fmt.Errorf("decision: %s", strings.Join(problems, "; "))
	}
	return nil
}

// SignWith signs d with key. It is the primitive under every Signer.
func SignWith(key ed25519.PrivateKey, d Decision) (Signed, error) {
	if d.Version == 0 {
		d.Version = FormatVersion
	}
	if err := d.Validate(); err != nil {
		return Signed{}, err
	}
	payload, err := json.Marshal(d)
	if err != nil {
		return Signed{}, err
	}
	pub := key.Public().(ed25519.PublicKey)
	return Signed{KeyID: KeyID(pub), Payload: payload, Signature: ed25519.Sign(key, message(payload))}, nil
}

// Reasons a decision is refused. Each error from Verify and Check wraps one,
// so callers can tell them apart with errors.Is.
var (
	ErrUnsigned      = errors.New("unsigned")
	ErrUnknownKey    = errors.New("signed with a key this joiner does not trust")
	ErrBadSignature  = errors.New("signature does not verify")
	ErrMalformed     = errors.New("malformed decision")
	ErrOtherJoiner   = errors.New("decision is for another joiner")
	ErrPlanChanged   = errors.New("decision is for a different plan")
	ErrStale         = errors.New("decision is stale")
	ErrFromTheFuture = errors.New("decision is dated in the future")
	ErrReplayed      = errors.New("decision was already used")
)

// Verify checks the signature against the trusted keys and returns the
// decision it covers. It says nothing about whether the decision applies.
func Verify(keys []PublicKey, s Signed) (Decision, error) {
	if len(s.Signature) == 0 || len(s.Payload) == 0 {
		return Decision{}, ErrUnsigned
	}
	var key ed25519.PublicKey
	for _, k := range keys {
		if k.ID == s.KeyID && len(k.Key) == ed25519.PublicKeySize {
			key = k.Key
			break
		}
	}
	if key == nil {
		return Decision{}, fmt.Errorf("%w (key %q)", ErrUnknownKey, s.KeyID)
	}
	if !ed25519.Verify(key, message(s.Payload), s.Signature) {
		return Decision{}, ErrBadSignature
	}
	var d Decision
	if err := json.Unmarshal(s.Payload, &d); err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := d.Validate(); err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return d, nil
}

// Expect is what a decision must match to count for a joiner.
type Expect struct {
	WorkflowID string
	// RunID, when set, must equal the decision's run.
	RunID         string
	PlanHash      string
	PolicyVersion string
	// Now is the verifier's time (workflow.Now in a workflow).
	Now time.Time
	// MaxAge is how old a decision may be; ClockSkew how far in the future.
	MaxAge    time.Duration
	ClockSkew time.Duration
	// Used says whether a nonce was already counted.
	Used func(nonce string) bool
}

// Check verifies s and that it is for this joiner and plan, fresh and not
// replayed. Whether the approver may decide is the caller's question.
func Check(keys []PublicKey, s Signed, exp Expect) (Decision, error) {
	d, err := Verify(keys, s)
	if err != nil {
		return Decision{}, err
	}
	switch {
	case d.WorkflowID != exp.WorkflowID:
		return d, fmt.Errorf("%w (%s)", ErrOtherJoiner, d.WorkflowID)
	case exp.RunID != "" && d.RunID != exp.RunID:
		return d, fmt.Errorf("%w: signed for run %q of %s", ErrOtherJoiner, d.RunID, d.WorkflowID)
	case d.PlanHash != exp.PlanHash || d.PolicyVersion != exp.PolicyVersion:
		return d, fmt.Errorf("%w: signed for plan %s under policy %s, the joiner will do %s under %s",
			ErrPlanChanged, short(d.PlanHash), d.PolicyVersion, short(exp.PlanHash), exp.PolicyVersion)
	case exp.MaxAge > 0 && exp.Now.Sub(d.IssuedAt) > exp.MaxAge:
		return d, fmt.Errorf("%w: signed %s before it arrived (at most %s)", ErrStale, exp.Now.Sub(d.IssuedAt).Round(time.Second), exp.MaxAge)
	case d.IssuedAt.Sub(exp.Now) > exp.ClockSkew:
		return d, fmt.Errorf("%w: signed %s after it arrived", ErrFromTheFuture, d.IssuedAt.Sub(exp.Now).Round(time.Second))
	case exp.Used != nil && exp.Used(d.Nonce):
		return d, ErrReplayed
	}
	return d, nil
}

// PlanHash is the digest a decision binds to: SHA-256 over the plan's JSON
// (Go encodes struct fields in order and map keys sorted, so the same plan
// always hashes the same, in the workflow and in the inbox).
func PlanHash(plan any) (string, error) {
	b, err := json.Marshal(plan)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func short(h string) string {
	if len(h) > 19 {
		return h[:19]
	}
	return h
}
