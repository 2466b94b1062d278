package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/inbox"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

var commands = map[string]command{
	"start": cmdStart,
	"approve": func(ctx context.Context, cfg config.Config, a []string, o, e io.Writer) int {
		return cmdDecide(ctx, cfg, a, o, e, true)
	},
	"reject": func(ctx context.Context, cfg config.Config, a []string, o, e io.Writer) int {
		return cmdDecide(ctx, cfg, a, o, e, false)
	},
	"rescind":    cmdRescind,
	"move-start": cmdMoveStart,
	"status":     cmdStatus,
}

func operator() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "operator"
}

func cmdStart(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", "", "joiner kind (default: from the HR record)")
	as := fs.String("as", operator(), "operator starting the joiner, for the audit record")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: starter start HRIS_ID [--kind K] [--as OPERATOR] [--json]")
		return exitUsage
	}
	return startAndReport(ctx, cfg, stdout, stderr, workflows.JoinerInput{HRISID: pos[0], Kind: *kind, Source: "cli", RequestedBy: *as}, *asJSON)
}

// startAndReport starts a joiner and prints the answer; a joiner that
// already exists for the record exits with exitRefused.
func startAndReport(ctx context.Context, cfg config.Config, stdout, stderr io.Writer, in workflows.JoinerInput, asJSON bool) int {
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	res, err := run.StartJoiner(ctx, c, cfg, in)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	if asJSON {
		_ = json.NewEncoder(stdout).Encode(res)
	} else {
		fmt.Fprintf(stdout, "%s: %s\n%s\n", res.WorkflowID, res.Outcome, res.UIURL)
	}
	if res.Outcome != run.Started {
		return exitRefused
	}
	return exitOK
}

// cmdDecide approves or rejects as a person, through the approval inbox
// (which signs the decision), or as an operator with --break-glass directly
// through Temporal where the joiner's policy route allows it.
func cmdDecide(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, approve bool) int {
	name := "reject"
	if approve {
		name = "approve"
	}
	usage := fmt.Sprintf("usage: starter %s ID [--as USER] [--comment C] [--wait] [--password-stdin]\n"+
		"       starter %s ID --break-glass --reason R [--as OPERATOR] [--wait]\n", name, name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	as := fs.String("as", operator(), "your directory username (the inbox checks your password)")
	comment := fs.String("comment", "", "comment recorded with the decision")
	wait := fs.Bool("wait", false, "wait for the joiner's answer (the validated update) instead of sending a signal")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of the terminal")
	breakGlass := fs.Bool("break-glass", false, "operator decision without the inbox, only where policy enables it; needs --reason")
	reason := fs.String("reason", "", "why break-glass is needed (required with --break-glass)")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 || strings.TrimSpace(*as) == "" {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if !*breakGlass {
		if *reason != "" {
			fmt.Fprintf(stderr, "%s: --reason is for --break-glass; use --comment\n", name)
			return exitUsage
		}
		return inboxDecision(ctx, cfg, stdout, stderr, credentials{user: *as, passwordStdin: *pwStdin}, pos[0],
			inbox.DecisionRequest{Action: name, Comment: *comment, Wait: *wait})
	}
	if strings.TrimSpace(*reason) == "" {
		fmt.Fprintf(stderr, "%s: --break-glass needs --reason: the joiner records it and marks the decision as break-glass\n", name)
		return exitUsage
	}
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	s := workflows.ApprovalSignal{BreakGlass: &workflows.BreakGlass{Operator: *as, Reason: strings.TrimSpace(*reason)},
		Comment: *comment, Approve: approve}
	if *wait {
		out, err := run.Decide(ctx, c, pos[0], s)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitRefused
		}
		fmt.Fprintf(stdout, "%s: %s by break-glass (%s)\n", run.ResolveID(pos[0]), out, *as)
		return exitOK
	}
	signal := workflows.SignalReject
	if approve {
		signal = workflows.SignalApprove
	}
	if err := run.Signal(ctx, c, pos[0], signal, s); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: break-glass %s sent as %s (the joiner refuses it unless its policy route allows break-glass)\n",
		run.ResolveID(pos[0]), signal, *as)
	return exitOK
}

// dial connects to Temporal, reporting a failure on stderr.
func dial(ctx context.Context, cfg config.Config, stderr io.Writer) (client.Client, bool) {
	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	return c, true
}

// sendSignal sends one signal to a joiner and says what it did.
func sendSignal(ctx context.Context, cfg config.Config, stdout, stderr io.Writer, id, name string, payload any, done string) int {
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	if err := run.Signal(ctx, c, id, name, payload); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: %s\n", run.ResolveID(id), done)
	return exitOK
}

func cmdRescind(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rescind", flag.ContinueOnError)
	fs.SetOutput(stderr)
	as := fs.String("as", "", "who withdraws the offer, required")
	reason := fs.String("reason", "", "why")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 || *as == "" {
		fmt.Fprintln(stderr, "usage: starter rescind ID --as USER [--reason R]")
		return exitUsage
	}
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	id := pos[0]
	err = run.Signal(ctx, c, id, workflows.SignalRescind, workflows.RescindSignal{By: *as, Reason: *reason, Via: "cli"})
	if errors.Is(err, run.ErrNoRunningJoiner) {
		// A joiner stays open until the start date; once it has closed the
		// hire has started (or never got a joiner), and taking access away
		// is the leaver process's job, not a rollback.
		if res, rerr := run.Result(ctx, c, id); rerr == nil && res != nil && res.Outcome == workflows.OutcomeCompleted {
			fmt.Fprintf(stderr, "refused: %s completed (the hire has started); a rescind no longer rolls back — use the leaver process to remove %s's access\n",
				run.ResolveID(id), res.Username)
			return exitRefused
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: rescind sent; the joiner rolls back what it created\n", run.ResolveID(id))
	return exitOK
}

func cmdMoveStart(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("move-start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	as := fs.String("as", operator(), "who moves the date")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 2 {
		fmt.Fprintln(stderr, "usage: starter move-start ID YYYY-MM-DD [--as USER]")
		return exitUsage
	}
	if _, err := time.Parse(time.DateOnly, pos[1]); err != nil {
		fmt.Fprintf(stderr, "move-start: date %q: want YYYY-MM-DD\n", pos[1])
		return exitUsage
	}
	// The HR record decides the start date: the signal makes the joiner
	// read it again, so a date HR does not have moves nothing.
	return sendSignal(ctx, cfg, stdout, stderr, pos[0], workflows.SignalStartDateChange, workflows.StartDateSignal{HireDate: pos[1], By: *as},
		"asked the joiner to re-read its hire date from HR; it moves to "+pos[1]+" only if the HR record says so")
}

func cmdStatus(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: starter status ID [--json]")
		return exitUsage
	}
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	st, res, wfStatus, err := run.Status(ctx, c, pos[0])
	if err != nil && res == nil && st.Stage == "" {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Workflow string                  `json:"workflowStatus"`
			Status   workflows.Status        `json:"status"`
			Result   *workflows.JoinerResult `json:"result,omitempty"`
		}{strings.TrimPrefix(wfStatus.String(), "WorkflowExecutionStatus"), st, res})
		return exitOK
	}
	printStatus(stdout, cfg, st, res, wfStatus)
	return exitOK
}

func printStatus(w io.Writer, cfg config.Config, st workflows.Status, res *workflows.JoinerResult, wf enumspb.WorkflowExecutionStatus) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "joiner\t%s\n", st.HRISID)
	fmt.Fprintf(tw, "workflow\t%s (%s)\n", workflows.JoinerWorkflowID(st.HRISID), wf.String())
	fmt.Fprintf(tw, "stage\t%s\n", st.Stage)
	fmt.Fprintf(tw, "policy\t%s\n", st.PolicyVersion)
	if st.Plan != nil {
		fmt.Fprintf(tw, "candidates\t%s\n", strings.Join(st.Plan.Candidates, ", "))
		var groups []string
		for _, g := range st.Plan.Groups {
			groups = append(groups, g.Group)
		}
		fmt.Fprintf(tw, "groups\t%s\n", strings.Join(groups, ", "))
		fmt.Fprintf(tw, "approvers\t%s\n", strings.Join(st.Approvers, ", "))
	}
	if st.Owner != "" {
		fmt.Fprintf(tw, "owner\t%s\n", st.Owner)
	}
	if st.EndDate != "" {
		fmt.Fprintf(tw, "access until\t%s (revoked the day after)\n", st.EndDate)
	}
	if st.Username != "" {
		fmt.Fprintf(tw, "username\t%s\n", st.Username)
		fmt.Fprintf(tw, "dn\t%s\n", st.DN)
	}
	if wl := st.Workload; wl != nil {
		fmt.Fprintf(tw, "approle\t%s (role_id %s), SecretID wrapped for %s (accessor %s)\n", wl.RoleName, wl.RoleID, wl.DeliveredTo, wl.WrapAccessor)
		fmt.Fprintf(tw, "vault policy\t%s\n", wl.PolicyName)
		for _, line := range strings.Split(strings.TrimSpace(wl.PolicyHCL), "\n") {
			fmt.Fprintf(tw, "\t  %s\n", line)
		}
	}
	for _, d := range st.Approvals {
		verdict := "rejected"
		if d.Approved {
			verdict = "approved"
		}
		if d.Refused != "" {
			verdict = "REFUSED (" + d.Refused + ")"
		}
		fmt.Fprintf(tw, "decision\t%s %s via %s at %s %q\n", d.Approver, verdict, d.Via, d.At.Format(time.RFC3339), d.Comment)
	}
	for _, r := range st.Resources {
		state := "created"
		if r.UndoneAt != nil {
			state = "undone " + r.UndoneAt.Format(time.RFC3339)
		}
		if r.UndoError != "" {
			state = "UNDO FAILED: " + r.UndoError
		}
		fmt.Fprintf(tw, "resource\t%s %s (%s)\n", r.Kind, r.ID, state)
	}
	for _, e := range st.Events {
		fmt.Fprintf(tw, "event\t%s %s\n", e.At.Format(time.RFC3339), e.What)
	}
	if res != nil {
		fmt.Fprintf(tw, "outcome\t%s\n", res.Outcome)
		if res.Credential != nil {
			fmt.Fprintf(tw, "credential\tvault %s v%d, wrapped for %s (accessor %s, expires %s)\n", res.Credential.Path,
				res.Credential.Version, res.Credential.DeliveredTo, res.Credential.WrapAccessor, res.Credential.ExpiresAt.Format(time.RFC3339))
		}
		if res.WriteBack != nil {
			fmt.Fprintf(tw, "hris written\t%s\n", strings.Join(append(res.WriteBack.Written, res.WriteBack.AlreadySet...), ", "))
			for _, c := range res.WriteBack.Conflicts {
				fmt.Fprintf(tw, "hris conflict\t%s: HR has %q, Joinery wanted %q (left as is)\n", c.Field, c.Current, c.Wanted)
			}
		}
		for _, r := range res.Revoked {
			fmt.Fprintf(tw, "revoked\t%s\n", r)
		}
		if res.Error != "" {
			fmt.Fprintf(tw, "reason\t%s\n", res.Error)
		}
	}
	fmt.Fprintf(tw, "ui\t%s\n", run.WorkflowURL(cfg, workflows.JoinerWorkflowID(st.HRISID)))
	tw.Flush()
}
