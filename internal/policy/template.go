package policy

import (
	"fmt"
	"strings"
)

// segment is one piece of a pattern or template: literal text, or a
// placeholder name (without braces).
type segment struct {
	lit string
	ph  string
}

// parseTemplate splits s into literal and {placeholder} segments. known
// decides which placeholder names are allowed; it returns a hint for the
// error message when a name is not.
func parseTemplate(s string, known func(string) bool, hint string) ([]segment, error) {
	var segs []segment
	for s != "" {
		open := strings.IndexAny(s, "{}")
		if open < 0 {
			segs = append(segs, segment{lit: s})
			break
		}
		if s[open] == '}' {
			return nil, fmt.Errorf("unmatched '}' at byte %d", open)
		}
		if open > 0 {
			segs = append(segs, segment{lit: s[:open]})
		}
		end := strings.IndexAny(s[open+1:], "{}")
		if end < 0 || s[open+1+end] != '}' {
			return nil, fmt.Errorf("unclosed '{' at byte %d", open)
		}
		name := s[open+1 : open+1+end]
		if !known(name) {
			return nil, fmt.Errorf("unknown placeholder {%s}; %s", name, hint)
		}
		segs = append(segs, segment{ph: name})
		s = s[open+1+end+1:]
	}
	return segs, nil
}

// usernamePlaceholder is the only placeholder a plan leaves unexpanded: the
// username is chosen later, against the live directory.
const usernamePlaceholder = "{username}"

// valueTemplateHint lists what attribute and write-back templates may use.
var valueTemplateHint = "use {username} or a worker field such as {firstName}, {department}"

func isValueTemplatePlaceholder(name string) bool {
	return name == "username" || isWorkerField(name)
}

// expandValueTemplate fills worker fields and keeps {username} for later.
// Worker values cannot contain braces (Plan rejects them), so the only
// braces in the result are the {username} placeholders the template put
// there.
func expandValueTemplate(segs []segment, w *Worker) string {
	var b strings.Builder
	for _, s := range segs {
		switch {
		case s.ph == "username":
			b.WriteString(usernamePlaceholder)
		case s.ph != "":
			b.WriteString(w.field(s.ph))
		default:
			b.WriteString(s.lit)
		}
	}
	return b.String()
}

func fillUsername(m map[string]string, username string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strings.ReplaceAll(v, usernamePlaceholder, username)
	}
	return out
}
