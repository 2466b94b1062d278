package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// FileInbox is the dev stack's delivery channel: each person has a directory
// under Dir, standing in for their mailbox. Wrapped credential tokens land in
// handover/<person>/<joiner>.token with mode 0600 (single use, short TTL);
// notifications are appended to inbox/<person>.jsonl. A deployment replaces it
// with mail or chat behind the same two interfaces.
type FileInbox struct {
	Dir string
	Now func() time.Time
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// Deliver writes the wrapping token for recipient. Re-delivery for the same
// joiner replaces the earlier token (which the new issue superseded).
func (f FileInbox) Deliver(ctx context.Context, recipient, joinerID, token string) error {
	if !safeName.MatchString(recipient) || !safeName.MatchString(joinerID) {
		return fmt.Errorf("handover: unsafe recipient or joiner name")
	}
	dir := filepath.Join(f.Dir, "handover", recipient)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+joinerID+".tmp")
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, joinerID+".token"))
}

// HandoverPath says where Deliver puts a joiner's token for recipient.
func (f FileInbox) HandoverPath(recipient, joinerID string) string {
	return filepath.Join(f.Dir, "handover", recipient, joinerID+".token")
}

// Notify appends one JSON line to the person's inbox file.
func (f FileInbox) Notify(ctx context.Context, n Notification) error {
	if !safeName.MatchString(n.To) {
		return fmt.Errorf("notify: unsafe recipient name %q", n.To)
	}
	dir := filepath.Join(f.Dir, "inbox")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	line, err := json.Marshal(struct {
		At time.Time `json:"at"`
		Notification
	}{now().UTC(), n})
	if err != nil {
		return err
	}
	fh, err := os.OpenFile(filepath.Join(dir, n.To+".jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, err = fh.Write(append(line, '\n'))
	return err
}
