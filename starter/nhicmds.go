package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/inbox"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/workflows"
)

func init() {
	commands["request"] = cmdRequest
	commands["extend"] = cmdExtend
	commands["revoke"] = cmdRevoke
}

// stringList collects a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// cmdRequest starts a non-human joiner: starter request KIND NAME --sponsor
// HRIS_ID --environment ENV --purpose TEXT --until YYYY-MM-DD [--tool T]...
func cmdRequest(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sponsor := fs.String("sponsor", "", "HRIS employee ID of the accountable human (required)")
	env := fs.String("environment", "", "environment, e.g. staging or production (required)")
	purpose := fs.String("purpose", "", "what the identity is for (required)")
	until := fs.String("until", "", "end date YYYY-MM-DD (required)")
	start := fs.String("start", time.Now().UTC().Format(time.DateOnly), "start date YYYY-MM-DD")
	as := fs.String("as", operator(), "who requests it, for the audit record")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	var tools stringList
	fs.Var(&tools, "tool", "a tool or permission an AI agent uses (repeatable), recorded in the audit record")
	pos, err := parseInterleaved(fs, args)
	usage := "usage: starter request service-account|pipeline|ai-agent NAME --sponsor HRIS_ID --environment ENV --purpose TEXT --until YYYY-MM-DD [--tool T]..."
	if err != nil || len(pos) != 2 {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	kind, name := pos[0], pos[1]
	var problems []string
	if !policy.IsKnownKind(kind) || policy.IsHumanKind(kind) {
		problems = append(problems, fmt.Sprintf("kind %q: want service-account, pipeline or ai-agent", kind))
	}
	for flagName, v := range map[string]string{"sponsor": *sponsor, "environment": *env, "purpose": *purpose, "until": *until} {
		if strings.TrimSpace(v) == "" {
			problems = append(problems, "--"+flagName+" is required")
		}
	}
	for flagName, v := range map[string]string{"until": *until, "start": *start} {
		if v != "" {
			if _, err := time.Parse(time.DateOnly, v); err != nil {
				problems = append(problems, fmt.Sprintf("--%s %q: want YYYY-MM-DD", flagName, v))
			}
		}
	}
	key := workflows.NonHumanKey(name, *env)
	if err := workflows.ValidateHRISID(key); err != nil {
		problems = append(problems, fmt.Sprintf("name %q and environment %q must be letters, digits, '.', '_' or '-'", name, *env))
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "request: %s\n%s\n", strings.Join(problems, "; "), usage)
		return exitUsage
	}
	return startAndReport(ctx, cfg, stdout, stderr, workflows.JoinerInput{HRISID: key, Kind: kind, Source: "cli", RequestedBy: *as,
		Request: &activities.NonHumanRequest{Name: name, SponsorID: *sponsor, Environment: *env, Purpose: *purpose,
			StartDate: *start, EndDate: *until, Tools: tools}}, *asJSON)
}

// cmdExtend asks, as the owner, to move the end date of time-bound access,
// through the approval inbox, which signs the extension.
func cmdExtend(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("extend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	as := fs.String("as", operator(), "your directory username: the owner (sponsor or manager)")
	comment := fs.String("comment", "", "why")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of the terminal")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 2 || strings.TrimSpace(*as) == "" {
		fmt.Fprintln(stderr, "usage: starter extend ID YYYY-MM-DD [--as OWNER] [--comment C] [--password-stdin]")
		return exitUsage
	}
	if _, err := time.Parse(time.DateOnly, pos[1]); err != nil {
		fmt.Fprintf(stderr, "extend: date %q: want YYYY-MM-DD\n", pos[1])
		return exitUsage
	}
	return inboxDecision(ctx, cfg, stdout, stderr, credentials{user: *as, passwordStdin: *pwStdin}, pos[0],
		inbox.DecisionRequest{Action: "extend", EndDate: pos[1], Comment: *comment})
}

func cmdRevoke(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	as := fs.String("as", "", "who revokes, required")
	reason := fs.String("reason", "", "why")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 || *as == "" {
		fmt.Fprintln(stderr, "usage: starter revoke ID --as USER [--reason R]")
		return exitUsage
	}
	return sendSignal(ctx, cfg, stdout, stderr, pos[0], workflows.SignalRevoke, workflows.RescindSignal{By: *as, Reason: *reason},
		"revoke sent; access ends now")
}
