package inbox

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/workflows"
)

// workflowIDShape is what a joiner's workflow ID looks like
// (workflows.JoinerWorkflowID of an HRIS ID or a non-human key).
var workflowIDShape = regexp.MustCompile(`^joiner-[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// errNotFound means there is no such joiner, or none this person may see:
// the two are deliberately one answer.
var errNotFound = errors.New("no such joiner")

// joiner is a workflow's status as the inbox reads it.
type joiner struct {
	// RunID is the run the inbox signs for (from Temporal, not the status query).
	RunID   string
	ID      string
	Running bool
	Status  workflows.Status
}

// rights is what one person may do with one joiner right now.
type rights struct {
	// Decide: approve or reject (approver, delegate, escalation target, or
	// the second approver who has not approved yet).
	Decide bool
	// Extend: move the end date of active time-bound access they own.
	Extend bool
	// Related: the person has a part in this joiner (may see its page).
	Related bool
}

// closedStages are stages in which nobody decides any more.
var closedStages = []workflows.Stage{
	workflows.StageCompleted, workflows.StageExpired, workflows.StageRevoked, workflows.StageRevoking,
	workflows.StageRollingBack, workflows.StageRejected, workflows.StageRescinded, workflows.StageFailed,
	workflows.StageCompensationFailed,
}

// rightsOf reads a person's rights from the joiner's own status, never from
// the request: the workflow is the authority on who may decide.
func rightsOf(j joiner, user string) rights {
	st := j.Status
	var r rights
	named := slices.Contains(st.Approvers, user) || (st.SecondApprover != "" && st.SecondApprover == user)
	decided := false
	for _, d := range st.Approvals {
		if d.Approver == user {
			decided = true
		}
	}
	r.Related = named || decided || (st.Owner != "" && st.Owner == user)
	if !j.Running || user == "" {
		return r
	}
	open := st.Stage != workflows.StageActive && !slices.Contains(closedStages, st.Stage)
	switch {
	case !open || hasApproved(st, user):
	case st.SecondApprover != "" && st.SecondApprover == user:
		r.Decide = true
	case slices.Contains(st.Approvers, user):
		// The approver and the delegates share one vote: once any of them
		// approved, the others have nothing left to decide.
		r.Decide = !firstApproved(st)
	}
	if st.Stage == workflows.StageActive && st.Owner != "" && st.Owner == user {
		r.Extend = true
	}
	return r
}

// firstApproved says whether the approver's side (approver, a delegate,
// the escalation target, or break-glass) has approved already.
func firstApproved(st workflows.Status) bool {
	for _, d := range st.Approvals {
		if d.Approved && d.Refused == "" && (st.SecondApprover == "" || d.Approver != st.SecondApprover) {
			return true
		}
	}
	return false
}

// hasApproved says whether user's approval already counted: a second
// approval by the same person adds nothing (four eyes means two people).
func hasApproved(st workflows.Status, user string) bool {
	for _, d := range st.Approvals {
		if d.Approver == user && d.Approved && d.Refused == "" {
			return true
		}
	}
	return false
}

// load reads a joiner's execution state and status query.
func (s *Server) load(ctx context.Context, id string) (joiner, error) {
	if !workflowIDShape.MatchString(id) {
		return joiner{}, errNotFound
	}
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return joiner{}, errNotFound
		}
		return joiner{}, fmt.Errorf("describe %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	// Only a Joiner is something the inbox signs for: a workflow of another
	// type placed under a joiner's ID (to collect a manager's signature)
	// is not found.
	if info.GetType().GetName() != "Joiner" {
		return joiner{}, errNotFound
	}
	j := joiner{ID: id, RunID: info.GetExecution().GetRunId(), Running: info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}
	v, err := s.temporal.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return joiner{}, errNotFound
		}
		return joiner{}, fmt.Errorf("query %s: %w", id, err)
	}
	if err := v.Get(&j.Status); err != nil {
		return joiner{}, fmt.Errorf("query %s: %w", id, err)
	}
	return j, nil
}

// quote makes a visibility query string literal.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// listed is one row of a visibility query.
type listed struct {
	ID      string
	Running bool
}

// maxListed bounds how many joiners one page asks about (each costs a query).
const maxListed = 200

func (s *Server) list(ctx context.Context, query string) ([]listed, error) {
	var out []listed
	var token []byte
	for len(out) < maxListed {
		resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 100})
		if err != nil {
			return nil, fmt.Errorf("list (%s): %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, listed{ID: e.GetExecution().GetWorkflowId(), Running: e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
			if len(out) == maxListed {
				break
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	return out, nil
}

// personIn is the visibility condition "attr holds user": the user's
// pseudonym, which is what joiners publish (workflows.SearchKeys), or, for
// joiners planned before pseudonyms and still running, the username itself.
// The username appears only in the query, which the server does not store.
// (The legacy term can go once no such joiner runs: `starter list` with
// --manager shows them.)
func (s *Server) personIn(attr, user string) string {
	return "(" + attr + " = " + quote(s.pseudonyms.Of(user)) + " OR " + attr + " = " + quote(user) + ")"
}

// waitingFor lists the running joiners user may decide on now: the
// JoinerDeciders search attribute finds candidates, and each joiner's own
// status has the last word (the attribute may lag a signal behind).
func (s *Server) waitingFor(ctx context.Context, user string) ([]joiner, error) {
	if pseudonym.Is(user) {
		// A directory entry named like a pseudonym would match someone
		// else's; the status check below would drop their joiners anyway,
		// but there is nothing to list for such a name.
		return nil, nil
	}
	rows, err := s.list(ctx, s.personIn(workflows.SADeciders.GetName(), user)+" AND ExecutionStatus = 'Running'")
	if err != nil {
		return nil, err
	}
	// Each candidate costs a describe and a query; a few at a time keeps a
	// busy manager's page quick without flooding the frontend.
	loaded := make([]*joiner, len(rows))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, r := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			j, err := s.load(ctx, r.ID)
			if err != nil {
				// One joiner that cannot answer (no worker for its
				// version, just closed) must not hide the others.
				s.log.Warn("waiting list: joiner did not answer", "workflow", r.ID, "err", err)
				return
			}
			loaded[i] = &j
		}()
	}
	wg.Wait()
	var out []joiner
	for _, j := range loaded {
		if j == nil {
			continue
		}
		if rr := rightsOf(*j, user); rr.Decide || rr.Extend {
			out = append(out, *j)
		}
	}
	return out, nil
}

// pastDecision is one of a person's decisions on one joiner.
type pastDecision struct {
	WorkflowID string
	Stage      workflows.Stage
	Running    bool
	Decisions  []workflows.Decision
	// Unavailable is set when the joiner's record could not be read.
	Unavailable string
}

// maxPastDecisions bounds "My decisions" to the most recent joiners.
const maxPastDecisions = 50

// decidedBy lists the joiners user decided on, most recent first, with
// their decisions: from the status query while a joiner runs, from its
// result (in history, no worker needed) once it has closed.
func (s *Server) decidedBy(ctx context.Context, user string) ([]pastDecision, error) {
	if pseudonym.Is(user) {
		return nil, nil
	}
	rows, err := s.list(ctx, s.personIn(workflows.SADecidedBy.GetName(), user))
	if err != nil {
		return nil, err
	}
	rows = rows[:min(len(rows), maxPastDecisions)]
	out := make([]pastDecision, len(rows))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, r := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// One slow joiner must not hold the page.
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			p := pastDecision{WorkflowID: r.ID, Running: r.Running}
			var approvals []workflows.Decision
			if r.Running {
				j, err := s.load(ctx, r.ID)
				if err != nil {
					p.Unavailable = "status not available now"
				}
				p.Stage, approvals = j.Status.Stage, j.Status.Approvals
			} else {
				res, err := s.result(ctx, r.ID)
				if err != nil {
					p.Unavailable = "record not available now"
				}
				p.Stage, approvals = res.Stage, res.Approvals
			}
			for _, d := range approvals {
				if d.Approver == user {
					p.Decisions = append(p.Decisions, d)
				}
			}
			out[i] = p
		}()
	}
	wg.Wait()
	return out, nil
}

// result reads a closed joiner's result. A failed joiner's result travels
// in its error's details (see run.Result).
func (s *Server) result(ctx context.Context, id string) (workflows.JoinerResult, error) {
	var res workflows.JoinerResult
	err := s.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res)
	if err == nil {
		return res, nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() && ae.Details(&res) == nil {
		return res, nil
	}
	return workflows.JoinerResult{}, err
}
