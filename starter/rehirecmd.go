package main

// starter rehire HRIS_ID: the explicit start of a rehire (workflows/rehire.go).
// A plain `starter start` or an HR webhook for a rehire is refused and points
// here. The command finds the person's entry in the directory, derives the
// generation from its ownership marker (not from Temporal, whose retention
// may have forgotten the earlier joiner) and starts joiner-<id>~g<N>. Its
// checks are a courtesy to the operator: the workflow's CheckRehire and
// ClaimRehire re-check everything against HR, the directory and the policy,
// and the take-over needs the approver's signed decision.
//
// Adversary: an operator (or anyone with Temporal access) starting a
// rehire for someone who is not one, or for an entry that is live or not
// Joinery's. The command refuses what it can see; what it cannot, the
// workflow refuses before any change.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

func init() { commands["rehire"] = cmdRehire }

// rehireStart is what `starter rehire --json` prints.
type rehireStart struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId,omitempty"`
	Outcome    string `json:"outcome"`
	DN         string `json:"dn"`
	Previous   string `json:"previousJoiner"`
	UIURL      string `json:"uiUrl"`
}

func cmdRehire(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rehire", flag.ContinueOnError)
	fs.SetOutput(stderr)
	as := fs.String("as", operator(), "operator starting the rehire, for the audit record")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: starter rehire HRIS_ID [--as OPERATOR] [--json]")
		return exitUsage
	}
	id := pos[0]
	if err := workflows.ValidateHRISID(id); err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	dir, err := directory.New(run.DirectoryConfig(cfg))
	if err != nil {
		fmt.Fprintln(stderr, "rehire:", err)
		return exitFailed
	}
	e, err := dir.FindByEmployeeID(ctx, id, false)
	if err != nil {
		fmt.Fprintln(stderr, "rehire: look up the entry:", err)
		return exitFailed
	}
	next, why := rehireGeneration(id, e, dir.IsDisabled)
	if why != "" {
		fmt.Fprintf(stderr, "rehire %s refused: %s; nothing was started or changed\n", id, why)
		return exitRefused
	}
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	opts := client.StartWorkflowOptions{
		ID:        next,
		TaskQueue: cfg.TaskQueue,
		// A closed generation may be started again: the generation comes
		// from the entry's marker, so a rehire that completed holds the
		// entry and the next one is the next generation, while one that
		// was rescinded or failed handed the entry back, and the next
		// rehire is that same generation again (refusing it would block
		// the person until Temporal's retention deleted the old run).
		// CheckRehire and ClaimRehire re-derive everything from the
		// directory, and a running generation is never started twice.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAHRISID.ValueSet(id),
			workflows.SAStage.ValueSet(string(workflows.StageValidating)),
		),
		StaticSummary: fmt.Sprintf("Rehire %s (generation of %s), started via cli", id, e.Owner),
	}
	res := rehireStart{WorkflowID: next, DN: e.DN, Previous: e.Owner, UIURL: run.WorkflowURL(cfg, next), Outcome: string(run.Started)}
	wr, err := c.ExecuteWorkflow(ctx, opts, workflows.Joiner, workflows.JoinerInput{HRISID: id, Source: "cli-rehire", RequestedBy: *as, Rehire: true})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		res.RunID = wr.GetRunID()
	case errors.As(err, &already):
		res.Outcome = string(run.AlreadyRunning)
	default:
		fmt.Fprintf(stderr, "rehire: start %s: %v\n", next, err)
		return exitFailed
	}
	if *asJSON {
		_ = json.NewEncoder(stdout).Encode(res)
	} else {
		fmt.Fprintf(stdout, "%s: %s (re-enables %s, created by %s, once approved)\n%s\n", res.WorkflowID, res.Outcome, res.DN, res.Previous, res.UIURL)
	}
	if res.Outcome != string(run.Started) {
		return exitRefused
	}
	return exitOK
}

// rehireGeneration is the workflow ID a rehire of id runs under, from the
// entry the directory holds for id, or why there is none.
func rehireGeneration(id string, e *directory.Entry, disabled func(*directory.Entry) bool) (string, string) {
	switch {
	case e == nil:
		return "", "the directory has no entry for this person to re-enable (a new hire is started with `starter start`)"
	case e.Owner == "":
		return "", fmt.Sprintf("%s carries no Joinery marker: Joinery did not create it and never adopts it; an operator decides", e.DN)
	}
	next, ok := activities.NextGeneration(id, e)
	if !ok {
		return "", fmt.Sprintf("%s carries the marker %q, not one of this person's joiners; an operator decides", e.DN, e.Owner)
	}
	if !disabled(e) {
		return "", fmt.Sprintf("%s (joiner %s) is not disabled: it is a live account, or the leaver has not run", e.DN, e.Owner)
	}
	return next, ""
}
