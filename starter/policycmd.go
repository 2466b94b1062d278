package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joinery/joinery/internal/policy"
)

// Exit codes of the policy subcommands (prefixed: package main is shared).
const (
	policyExitOK      = 0
	policyExitInvalid = 1 // the policy or the record is invalid
	policyExitUsage   = 2
)

const policyUsage = `usage:
  starter policy check FILE...               validate policy files; print each version
  starter policy plan [--json] FILE RECORD   show the plan for one HR record (JSON Worker)

Exit status: 0 ok, 1 policy or record invalid, 2 usage error.
`

// policyCommand runs `starter policy ...`; args are the arguments after
// "policy". It returns the process exit code.
func policyCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return policyExitUsage
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "plan":
		return policyPlan(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, policyUsage)
		return policyExitOK
	default:
		fmt.Fprintf(stderr, "starter policy: unknown subcommand %q\n%s", args[0], policyUsage)
		return policyExitUsage
	}
}

func policyCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "starter policy check: expected one or more policy files\n%s", policyUsage)
		return policyExitUsage
	}
	code := policyExitOK
	for _, file := range args {
		p, err := policy.Load(file)
		if err != nil {
			policyPrintProblems(stderr, file, err)
			code = policyExitInvalid
			continue
		}
		fmt.Fprintf(stdout, "%s: %s ok\n", file, p.Version)
	}
	return code
}

// policyPrintProblems prints every leaf of a joined error on its own line.
func policyPrintProblems(w io.Writer, prefix string, err error) {
	for _, e := range policy.Problems(err) {
		fmt.Fprintf(w, "%s: %v\n", prefix, e)
	}
}

func policyPlan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("starter policy plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	// Accept the flag before or after the positional arguments.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return policyExitOK
			}
			return policyExitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "starter policy plan: expected FILE and RECORD, got %d argument(s)\n%s", len(pos), policyUsage)
		return policyExitUsage
	}
	file, recordFile := pos[0], pos[1]
	p, err := policy.Load(file)
	if err != nil {
		policyPrintProblems(stderr, file, err)
		return policyExitInvalid
	}
	w, err := policyReadRecord(recordFile)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", recordFile, err)
		return policyExitInvalid
	}
	plan, err := p.Plan(w)
	if err != nil {
		policyPrintProblems(stderr, recordFile, err)
		return policyExitInvalid
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			fmt.Fprintf(stderr, "encode plan: %v\n", err)
			return policyExitInvalid
		}
		return policyExitOK
	}
	policyPrintPlan(stdout, plan)
	return policyExitOK
}

// policyReadRecord decodes one HR record; unknown fields are errors so that a
// misspelt field is not silently ignored.
func policyReadRecord(path string) (policy.Worker, error) {
	var w policy.Worker
	data, err := os.ReadFile(path)
	if err != nil {
		return w, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return w, fmt.Errorf("invalid record: %w", err)
	}
	if dec.More() {
		return w, errors.New("invalid record: more than one JSON value")
	}
	return w, nil
}

// policyPrintPlan renders the plan as aligned tables for operators.
func policyPrintPlan(out io.Writer, p policy.Plan) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	line := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }

	line("Policy\t%s", p.PolicyVersion)
	line("Kind\t%s (ou=%s)", p.Kind, p.OU)
	if p.HireDate != "" {
		line("Hire date\t%s (provision on %s, %d days before)", p.HireDate, p.ProvisionDate, p.ProvisionLeadDays)
	}
	line("")
	line("USERNAME CANDIDATES")
	line("  #\tCANDIDATE\tPATTERN\tRULE")
	for i, r := range p.UsernameRules {
		line("  %d\t%s\t%s\t%s", i+1, r.Candidate, r.Pattern, r.Rule)
	}
	line("")
	line("GROUPS")
	line("  GROUP\tRULE\tSOURCE\tCONDITION")
	if len(p.Groups) == 0 {
		line("  (none)\t\t\t")
	}
	for _, g := range p.Groups {
		line("  %s\t%s\t%s\t%s", g.Group, g.Rule, g.Source, policyOrDash(g.Condition))
	}
	if len(p.Withheld) > 0 {
		line("")
		line("WITHHELD GROUPS")
		line("  GROUP\tRULE\tREASON\t")
		for _, g := range p.Withheld {
			line("  %s\t%s\t%s\t", g.Group, g.Rule, g.Reason)
		}
	}
	line("")
	line("ATTRIBUTES")
	for _, k := range slices.Sorted(maps.Keys(p.Attributes)) {
		line("  %s\t%s", k, p.Attributes[k])
	}
	line("")
	line("APPROVAL")
	a := p.Approval
	route := a.Rule
	if a.OverriddenBy != "" {
		route += " (chosen by exception " + a.OverriddenBy + ")"
	}
	line("  route\t%s", route)
	line("  approver\t%s", a.Approver)
	line("  second approver\t%s", policyOrDash(a.SecondApprover))
	line("  reminder after\t%s", policyFmtDuration(a.ReminderAfter))
	if a.EscalateTo != "" {
		line("  escalate to\t%s after %s", a.EscalateTo, policyFmtDuration(a.EscalateAfter))
	} else {
		line("  escalate to\t-")
	}
	line("  timeout (reject)\t%s", policyFmtDuration(a.Timeout))
	line("")
	line("WRITE-BACK (fields Joinery owns)")
	for _, k := range p.WriteBack {
		line("  %s\t%s", k, p.WriteBackTemplates[k])
	}
	line("")
	line("Credential wrap TTL\t%s", policyFmtDuration(p.CredentialTTL))
	line("Exceptions applied\t%s", policyOrDash(strings.Join(p.Exceptions, ", ")))
}

func policyOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// policyFmtDuration prints policy-style durations: 7d, 72h, 90m.
func policyFmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d%(24*time.Hour) == 0 && d >= 7*24*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
