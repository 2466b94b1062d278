package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/audit"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

func init() {
	commands["list"] = cmdList
	commands["audit"] = cmdAudit
}

// stageName accepts the UI's spelling (AwaitingApproval) or a shell-friendly
// one (awaiting-approval).
func stageName(s string) (string, error) {
	want := strings.ReplaceAll(strings.ToLower(s), "-", "")
	for _, st := range []workflows.Stage{workflows.StageValidating, workflows.StageWaitingStartDate, workflows.StageAwaitingApproval,
		workflows.StageClaimingUsername, workflows.StageGrantingGroups, workflows.StageIssuingSecret, workflows.StageWritingBack,
		workflows.StageCompleted, workflows.StageRollingBack, workflows.StageRejected, workflows.StageRescinded,
		workflows.StageFailed, workflows.StageCompensationFailed} {
		if strings.ToLower(string(st)) == want {
			return string(st), nil
		}
	}
	return "", fmt.Errorf("unknown stage %q", s)
}

var safeValue = regexp.MustCompile(`^[A-Za-z0-9 ._@-]{1,128}$`)

// listQuery builds the visibility query the Web UI would run. managerKey
// is the manager's pseudonym (what joiners publish in JoinerManager); the
// username itself also matches, for joiners planned before pseudonyms.
func listQuery(stage, manager, managerKey, kind, department string, expiringWithin time.Duration, now time.Time) (string, error) {
	parts := []string{`WorkflowType = "Joiner"`}
	add := func(attr, flagName, v string) error {
		if v == "" {
			return nil
		}
		if !safeValue.MatchString(v) {
			return fmt.Errorf("--%s %q: letters, digits, space, '.', '_', '@' and '-' only", flagName, v)
		}
		parts = append(parts, fmt.Sprintf("%s = %q", attr, v))
		return nil
	}
	if stage != "" {
		st, err := stageName(stage)
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("JoinerStage = %q", st))
	}
	if manager != "" {
		if !safeValue.MatchString(manager) {
			return "", fmt.Errorf("--manager %q: letters, digits, space, '.', '_', '@' and '-' only", manager)
		}
		if !pseudonym.Is(managerKey) {
			return "", fmt.Errorf("--manager %q: no pseudonym to look for (JOINERY_PSEUDONYM_KEY)", manager)
		}
		parts = append(parts, fmt.Sprintf("(JoinerManager = %q OR JoinerManager = %q)", managerKey, manager))
	}
	for _, f := range []struct{ attr, name, v string }{{"JoinerKind", "kind", kind}, {"JoinerDepartment", "department", department}} {
		if err := add(f.attr, f.name, f.v); err != nil {
			return "", err
		}
	}
	if expiringWithin > 0 {
		parts = append(parts, fmt.Sprintf("JoinerExpiry < %q", now.Add(expiringWithin).UTC().Format(time.RFC3339)),
			`ExecutionStatus = "Running"`)
	}
	return strings.Join(parts, " AND "), nil
}

// parseWithin reads 30d, 12h or 90m.
func parseWithin(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == d {
			return time.Duration(n) * 24 * time.Hour, nil
		}
		return 0, fmt.Errorf("--expiring-within %q: want e.g. 30d or 12h", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expiring-within %q: want e.g. 30d or 12h", s)
	}
	return d, nil
}

func cmdList(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stage := fs.String("stage", "", "stage, e.g. awaiting-approval")
	manager := fs.String("manager", "", "approver's username")
	kind := fs.String("kind", "", "employee, contractor, service-account, pipeline, ai-agent")
	department := fs.String("department", "", "HR department")
	within := fs.String("expiring-within", "", "only time-bound joiners whose access ends within this (e.g. 30d)")
	limit := fs.Int("limit", 100, "at most this many rows")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 0 || *limit < 1 {
		fmt.Fprintln(stderr, "usage: starter list [--stage S] [--manager U] [--kind K] [--department D] [--expiring-within 30d] [--limit N] [--json]")
		return exitUsage
	}
	w, err := parseWithin(*within)
	if err != nil {
		fmt.Fprintln(stderr, "list:", err)
		return exitUsage
	}
	// JoinerManager holds a keyed pseudonym, not the username: translate
	// the name with the worker's key (and show it for the rows it found).
	managerKey := ""
	if *manager != "" {
		k, err := pseudonym.New(cfg.PseudonymKey)
		if err != nil {
			fmt.Fprintln(stderr, "list --manager:", err)
			return exitFailed
		}
		managerKey = k.Of(*manager)
	}
	q, err := listQuery(*stage, *manager, managerKey, *kind, *department, w, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "list:", err)
		return exitUsage
	}
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	rows, err := run.List(ctx, c, q, *limit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	for i := range rows {
		if managerKey != "" && rows[i].Manager == managerKey {
			rows[i].Manager = *manager
		}
	}
	if *asJSON {
		_ = json.NewEncoder(stdout).Encode(rows)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tHRIS ID\tSTAGE\tKIND\tOWNER\tDEPARTMENT\tSTARTED\tEXPIRES\tSTATUS")
	for _, r := range rows {
		exp := "-"
		if r.Expiry != nil {
			exp = r.Expiry.UTC().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, r.HRISID, r.Stage, r.Kind, r.Manager, r.Department,
			r.Started.Format(time.DateTime), exp, r.Status)
	}
	tw.Flush()
	fmt.Fprintf(stderr, "%d joiner(s); query: %s\n", len(rows), q)
	return exitOK
}

func cmdAudit(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	verify := fs.String("verify", "", "verify the hash chain of an audit export `FILE` (JOINERY_AUDIT_LOG) instead")
	pos, err := parseInterleaved(fs, args)
	if err == nil && *verify != "" && len(pos) == 0 {
		// The export outlives Temporal: checking it needs no server.
		head, lines, err := activities.AuditHead(*verify)
		if err != nil {
			fmt.Fprintln(stderr, "audit log NOT intact:", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%s: chain intact, %d lines, head sha256:%s\n", *verify, lines, head)
		fmt.Fprintln(stdout, "anchor the head and line count elsewhere: a cut-off tail leaves a valid, shorter chain")
		return exitOK
	}
	if err != nil || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: starter audit ID [--json] | starter audit --verify FILE")
		return exitUsage
	}
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	rec, err := audit.Build(ctx, c, run.ResolveID(pos[0]))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rec)
		return exitOK
	}
	fmt.Fprintf(stdout, "Audit record of %s (run %s): %s\n", rec.WorkflowID, rec.RunID, rec.Status)
	fmt.Fprintf(stdout, "policy %s\n\n", rec.PolicyVersion)
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tWHAT\tDETAIL")
	for _, e := range rec.Timeline {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Kind, e.What, e.Detail)
	}
	tw.Flush()
	return exitOK
}
