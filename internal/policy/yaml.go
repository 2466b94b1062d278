package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The raw* types mirror the YAML file one to one. They are decoded first and
// then validated and compiled into the unexported parsed forms in policy.go,
// so that every problem can be reported with its field path.

type rawPolicy struct {
	Label        string              `yaml:"label"`
	Groups       []string            `yaml:"groups"`
	Naming       rawNaming           `yaml:"naming"`
	Kinds        map[string]rawKind  `yaml:"kinds"`
	Birthright   []rawBirthright     `yaml:"birthright"`
	Attributes   map[string]rawValue `yaml:"attributes"`
	Approval     rawApproval         `yaml:"approval"`
	WriteBack    map[string]rawValue `yaml:"writeback"`
	Provisioning rawProvisioning     `yaml:"provisioning"`
	Credentials  rawCredentials      `yaml:"credentials"`
	Exceptions   []rawException      `yaml:"exceptions"`
	// Sites maps HR locations to the IANA time zones whose local midnight
	// provisioning and expiry happen at (sites.go).
	Sites rawSites `yaml:"sites"`
	// Intake is parsed by ParseIntake (intake.go), not by Parse: the HR
	// intake reads it without compiling the whole policy.
	Intake rawIntake `yaml:"intake"`
	// Rehire allows the explicit rehire path (rehire.go); absent: refused.
	Rehire *rawRehire `yaml:"rehire"`
}

type rawNaming struct {
	UsePreferredName bool              `yaml:"use_preferred_name"`
	Lowercase        *bool             `yaml:"lowercase"`
	Strip            []string          `yaml:"strip"`
	Transliterate    map[string]string `yaml:"transliterate"`
	MaxLength        *int              `yaml:"max_length"`
	MaxAttempts      *int              `yaml:"max_attempts"`
	Reserved         []string          `yaml:"reserved"`
	Patterns         []rawPattern      `yaml:"patterns"`
	Counters         []rawPattern      `yaml:"counters"`
}

type rawPattern struct {
	Pattern string `yaml:"pattern"`
	When    string `yaml:"when"`
	Start   *int   `yaml:"start"`
}

type rawKind struct {
	OU           string    `yaml:"ou"`
	Required     []string  `yaml:"required"`
	MaxLifetime  string    `yaml:"max_lifetime"`
	Environments []string  `yaml:"environments"`
	Groups       *[]string `yaml:"groups"`
	// Vault is the AppRole a workload of this kind gets (non-human kinds).
	Vault *rawWorkload `yaml:"vault"`
	// ExpiryReminder is how long before the end date the owner is reminded.
	ExpiryReminder string `yaml:"expiry_reminder"`
}

type rawBirthright struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Group       string `yaml:"group"`
	When        string `yaml:"when"`
}

// rawValue is an attribute or write-back value: either a plain string (a
// template) or a mapping with exactly one of `template` or `expr` (CEL).
type rawValue struct {
	Template string `yaml:"template"`
	Expr     string `yaml:"expr"`
}

// UnmarshalYAML accepts the scalar shorthand for a template.
func (v *rawValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v.Template = n.Value
		return nil
	}
	type plain rawValue // no UnmarshalYAML: avoids recursion
	return n.Decode((*plain)(v))
}

type rawApproval struct {
	Routes []rawRoute `yaml:"routes"`
}

type rawRoute struct {
	Name           string   `yaml:"name"`
	Description    string   `yaml:"description"`
	When           string   `yaml:"when"`
	Approver       string   `yaml:"approver"`
	SecondApprover string   `yaml:"second_approver"`
	Delegates      []string `yaml:"delegates"`
	ReminderAfter  string   `yaml:"reminder_after"`
	EscalateAfter  string   `yaml:"escalate_after"`
	EscalateTo     string   `yaml:"escalate_to"`
	Timeout        string   `yaml:"timeout"`
	BreakGlass     bool     `yaml:"break_glass"`
}

type rawProvisioning struct {
	LeadDays     *int   `yaml:"lead_days"`
	RescindGrace string `yaml:"rescind_grace"`
	StuckAfter   string `yaml:"compensation_stuck_after"`
}

type rawSites struct {
	// DefaultZone is the zone of a location not listed under Zones; UTC
	// when empty.
	DefaultZone string `yaml:"default_zone"`
	// Zones maps an HR location (Worker.Location, exactly as HR writes
	// it) to an IANA zone name such as Europe/Berlin.
	Zones map[string]string `yaml:"zones"`
}

type rawCredentials struct {
	WrapTTL string `yaml:"wrap_ttl"`
}

type rawException struct {
	Name         string   `yaml:"name"`
	Description  string   `yaml:"description"`
	When         string   `yaml:"when"`
	AddGroups    []string `yaml:"add_groups"`
	RemoveGroups []string `yaml:"remove_groups"`
	Approval     string   `yaml:"approval"`
}

var rawValueType = reflect.TypeOf(rawValue{})

// decodeYAML decodes one YAML document into rawPolicy. Unknown keys and
// shape mismatches are reported with their field path (yaml.v3 itself only
// names Go types and line numbers).
func decodeYAML(data []byte) (*rawPolicy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, policyErr("", "policy file is empty")
		}
		return nil, policyErr("", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, policyErr("", "policy file must hold exactly one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, policyErr("", "policy must be a YAML mapping")
	}
	w := &shapeWalker{lines: map[int]string{}, bad: map[int]bool{}, budget: maxNodes}
	w.walk(root, reflect.TypeOf(rawPolicy{}), "", 0)
	if w.budget < 0 {
		return nil, policyErr("", "policy document is too large or too deeply nested (aliases included)")
	}
	var raw rawPolicy
	errs := w.errs
	if err := root.Decode(&raw); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, policyErr("", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		for _, msg := range te.Errors {
			line, rest := splitLine(msg)
			if w.bad[line] {
				continue // the shape walk already explained this line
			}
			errs = append(errs, policyErr(w.lines[line], "%s (line %d)", rest, line))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &raw, nil
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

func splitLine(msg string) (int, string) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

// shapeWalker checks a YAML node tree against the raw types' yaml tags.
type shapeWalker struct {
	errs  []error
	lines map[int]string // first field path seen on each line, for decode errors
	bad   map[int]bool   // lines already reported
	// budget counts down visited nodes. Aliases are followed, so without it
	// a small "billion laughs" file or a self-referencing anchor would make
	// the walk explode or never end.
	budget int
}

const (
	maxNodes = 100_000
	maxDepth = 32
)

func (w *shapeWalker) fail(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, policyErr(path, "%s (line %d)", fmt.Sprintf(format, args...), n.Line))
	w.bad[n.Line] = true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *shapeWalker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	w.budget--
	if w.budget < 0 || depth > maxDepth {
		w.budget = -1
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, seen := w.lines[n.Line]; !seen {
		w.lines[n.Line] = path
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value: the zero value, validated later
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == rawValueType && n.Kind == yaml.ScalarNode {
			return
		}
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping")
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			fields[tag] = t.Field(i).Type
			names = append(names, tag)
		}
		sort.Strings(names)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", k.Value)
				if s := suggest(k.Value, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				w.fail(k, join(path, k.Value), "%s", msg)
				continue
			}
			w.walk(v, ft, join(path, k.Value), depth+1)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "must be a list")
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), depth+1)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "must be a single value, not a %s", nodeKind(n))
		}
	}
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}
