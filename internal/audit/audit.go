// Package audit builds a joiner's audit record from its Temporal event
// history (and the status query), not from a second store: the history is
// the durable, replayable record of what Joinery saw and did.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/workflows"
)

// Entry is one line of the timeline.
type Entry struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // hr-event, policy, decision, created, undone, failed, signal, outcome
	What   string    `json:"what"`
	Detail string    `json:"detail,omitempty"`
}

// Record is a joiner's audit record.
type Record struct {
	WorkflowID    string                  `json:"workflowId"`
	RunID         string                  `json:"runId"`
	Status        string                  `json:"status"`
	Started       time.Time               `json:"started"`
	Closed        *time.Time              `json:"closed,omitempty"`
	Input         workflows.JoinerInput   `json:"input"`
	HRRecord      *policy.Worker          `json:"hrRecord,omitempty"`
	PolicyVersion string                  `json:"policyVersion,omitempty"`
	Plan          *policy.Plan            `json:"plan,omitempty"`
	Approvals     []workflows.Decision    `json:"approvals,omitempty"`
	Resources     []workflows.Resource    `json:"resources,omitempty"`
	Timeline      []Entry                 `json:"timeline"`
	Result        *workflows.JoinerResult `json:"result,omitempty"`
}

// localActivityMarker is the marker name the Go SDK records a local
// activity's type and result under (details "data" and "result").
const localActivityMarker = "LocalActivity"

// Build reads the joiner's history and, where a worker answers, its status.
func Build(ctx context.Context, c client.Client, workflowID string) (*Record, error) {
	dc := converter.GetDefaultDataConverter()
	decode := func(p *commonpb.Payloads, v any) bool {
		return p != nil && dc.FromPayloads(p, v) == nil
	}
	r := &Record{WorkflowID: workflowID}
	scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
	iter := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		n++
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			a := ev.GetWorkflowExecutionStartedEventAttributes()
			r.Started, r.RunID = at, a.GetOriginalExecutionRunId()
			decode(a.GetInput(), &r.Input)
			r.add(at, "hr-event", "joiner started", fmt.Sprintf("HR record %s via %s, requested by %s%s", r.Input.HRISID,
				or(r.Input.Source, "?"), or(r.Input.RequestedBy, "?"), suffix(" (HR event "+r.Input.EventID+")", r.Input.EventID != "")))
			if q := r.Input.Request; q != nil {
				r.add(at, "hr-event", "non-human request: "+r.Input.Kind+" "+q.Name, fmt.Sprintf("sponsor HRIS %s, environment %s, purpose %q, from %s until %s%s",
					q.SponsorID, q.Environment, q.Purpose, q.StartDate, q.EndDate, suffix("; tools: "+strings.Join(q.Tools, ", "), len(q.Tools) > 0)))
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := ev.GetActivityTaskCompletedEventAttributes()
			s := scheduled[a.GetScheduledEventId()]
			if s != nil {
				r.activityCompleted(at, s, a.GetResult(), decode)
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			// Short reads run as local activities (workflows: the fast
			// path); their type and result are in the marker, not in
			// activity events, and the record must read them the same way.
			a := ev.GetMarkerRecordedEventAttributes()
			if a.GetMarkerName() != localActivityMarker {
				break
			}
			var data struct{ ActivityType string }
			if !decode(a.GetDetails()["data"], &data) || data.ActivityType == "" {
				break
			}
			s := &historypb.ActivityTaskScheduledEventAttributes{ActivityType: &commonpb.ActivityType{Name: data.ActivityType}}
			if f := a.GetFailure(); f != nil {
				r.add(at, "failed", data.ActivityType+" failed", f.GetMessage())
				break
			}
			r.activityCompleted(at, s, a.GetDetails()["result"], decode)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			a := ev.GetActivityTaskFailedEventAttributes()
			if s := scheduled[a.GetScheduledEventId()]; s != nil {
				r.add(at, "failed", s.GetActivityType().GetName()+" failed", a.GetFailure().GetMessage())
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			a := ev.GetWorkflowExecutionSignaledEventAttributes()
			// The identity is what the sending Temporal client said it was:
			// who sent a refused decision, and through which path.
			r.add(at, "signal", "signal "+a.GetSignalName()+" sent by "+or(a.GetIdentity(), "(no identity)"),
				signalDetail(a.GetSignalName(), a.GetInput(), decode))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes()
			req := a.GetAcceptedRequest()
			r.add(at, "signal", "update "+req.GetInput().GetName()+" sent by "+or(req.GetMeta().GetIdentity(), "(no identity)"),
				signalDetail("decide", req.GetInput().GetArgs(), decode))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			a := ev.GetWorkflowExecutionUpdateCompletedEventAttributes()
			if f := a.GetOutcome().GetFailure(); f != nil {
				r.add(at, "decision", "update refused", f.GetMessage())
			} else {
				var out string
				decode(a.GetOutcome().GetSuccess(), &out)
				r.add(at, "decision", "update answered", out)
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			var res workflows.JoinerResult
			if decode(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res) {
				r.Result = &res
			}
			r.close(at, "completed")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
			var res workflows.JoinerResult
			if d := f.GetApplicationFailureInfo().GetDetails(); d != nil && decode(d, &res) {
				r.Result = &res
			}
			r.close(at, "failed")
			r.add(at, "outcome", "failed", f.GetMessage())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			r.close(at, "terminated")
			r.add(at, "outcome", "terminated by an operator", ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
			r.close(at, "canceled")
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no such joiner", workflowID)
	}
	if r.Status == "" {
		r.Status = "running"
	}
	if r.Result != nil {
		r.Approvals, r.Resources = r.Result.Approvals, r.Result.Resources
		r.add(*r.Closed, "outcome", "outcome "+r.Result.Outcome, r.Result.Error)
	} else if v, err := c.QueryWorkflow(ctx, workflowID, "", workflows.QueryStatus); err == nil {
		var st workflows.Status
		if v.Get(&st) == nil {
			r.Approvals, r.Resources = st.Approvals, st.Resources
		}
	}
	for _, d := range r.Approvals {
		verdict := "rejected"
		if d.Approved {
			verdict = "approved"
		}
		if d.Refused != "" {
			verdict = "REFUSED: " + d.Refused
		}
		r.add(d.At, "decision", d.Approver+" "+verdict+" (via "+d.Via+")", d.Comment)
	}
	for _, res := range r.Resources {
		if res.UndoneAt != nil {
			r.add(*res.UndoneAt, "undone", res.Kind+" "+res.ID, "")
		}
		if res.UndoError != "" {
			r.add(res.CreatedAt, "failed", "could not undo "+res.Kind+" "+res.ID, res.UndoError)
		}
	}
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].At.Before(r.Timeline[j].At) })
	return r, nil
}

func (r *Record) activityCompleted(at time.Time, s *historypb.ActivityTaskScheduledEventAttributes, result *commonpb.Payloads, decode func(*commonpb.Payloads, any) bool) {
	switch s.GetActivityType().GetName() {
	case "FetchJoiner":
		var w policy.Worker
		if decode(result, &w) {
			r.HRRecord = &w
			r.add(at, "hr-event", "HR record read", fmt.Sprintf("%s, %s, %s; manager %s; hire date %s; kind %s",
				w.JobTitle, w.Department, w.Location, w.ManagerUsername, w.HireDate, w.Kind))
		}
	case "PlanJoiner":
		var p policy.Plan
		if decode(result, &p) {
			r.Plan, r.PolicyVersion = &p, p.PolicyVersion
			r.add(at, "policy", "planned under policy "+p.PolicyVersion,
				fmt.Sprintf("approval route %q: approver %s%s", p.Approval.Rule, p.Approval.Approver,
					suffix(", second approver "+p.Approval.SecondApprover, p.Approval.SecondApprover != "")))
			for _, g := range p.Groups {
				r.add(at, "policy", "group "+g.Group+" granted by rule "+g.Rule, g.Condition)
			}
			for _, g := range p.Withheld {
				r.add(at, "policy", "group "+g.Group+" withheld", g.Reason)
			}
			for _, e := range p.Exceptions {
				r.add(at, "policy", "exception applied: "+e, "")
			}
			if p.Owner != "" && p.EndDate != "" {
				r.add(at, "policy", "time-bound access: owner "+p.Owner+", until "+p.EndDate,
					fmt.Sprintf("max lifetime %d days, reminder %s before the end", int(p.MaxLifetime/(24*time.Hour)), p.ExpiryReminder))
			}
			if wl := p.Workload; wl != nil {
				for _, g := range wl.Grants {
					r.add(at, "policy", "vault grant "+g.Path, strings.Join(g.Capabilities, ", "))
				}
			}
		}
	case "ClaimAccount":
		var c activities.ClaimResult
		if decode(result, &c) {
			rule := ""
			if r.Plan != nil {
				rule = r.Plan.RuleFor(c.Username)
			}
			r.add(at, "created", "directory entry "+c.DN, fmt.Sprintf("username %s from %s%s", c.Username, or(rule, "?"),
				suffix(" (existing entry of this joiner)", c.Existing)))
		}
	case "GrantGroup":
		// A regular activity's input names the grant; a local one's marker
		// has only its result, which since level 2 of the fast path is the
		// grant carried out.
		var in activities.GroupInput
		if decode(s.GetInput(), &in) || (decode(result, &in) && in.Group != "") {
			r.add(at, "created", "member of "+in.Group, in.MemberDN)
		}
	case "IssueCredential":
		var cr activities.CredentialResult
		if decode(result, &cr) {
			r.add(at, "created", fmt.Sprintf("initial credential vault %s v%d", cr.Path, cr.Version),
				fmt.Sprintf("wrapped for %s, accessor %s, expires %s", cr.DeliveredTo, cr.WrapAccessor, cr.ExpiresAt.Format(time.RFC3339)))
		}
	case "WriteBack":
		var wb activities.WriteBackOutput
		if decode(result, &wb) {
			detail := "written: " + strings.Join(wb.Written, ", ")
			if len(wb.AlreadySet) > 0 {
				detail += "; already set: " + strings.Join(wb.AlreadySet, ", ")
			}
			for _, c := range wb.Conflicts {
				detail += fmt.Sprintf("; CONFLICT %s (HR has %q, left as is)", c.Field, c.Current)
			}
			r.add(at, "created", "HRIS write-back", detail)
		}
	case "IssueWorkloadCredential":
		var wl activities.WorkloadResult
		if decode(result, &wl) {
			r.add(at, "created", "vault AppRole "+wl.RoleName+" with policy "+wl.PolicyName,
				fmt.Sprintf("role_id %s; SecretID wrapped for %s, accessor %s", wl.RoleID, wl.DeliveredTo, wl.WrapAccessor))
		}
	case "Notify":
		var n activities.Notification
		if decode(s.GetInput(), &n) {
			r.add(at, "signal", "notified "+n.To+" ("+n.Kind+")", "")
		}
	}
}

func signalDetail(name string, p *commonpb.Payloads, decode func(*commonpb.Payloads, any) bool) string {
	switch name {
	case workflows.SignalApprove, workflows.SignalReject, "decide":
		var s workflows.ApprovalSignal
		if decode(p, &s) {
			switch {
			case s.BreakGlass != nil:
				return fmt.Sprintf("BREAK-GLASS by operator %s: %q", or(s.BreakGlass.Operator, "(nobody)"), s.BreakGlass.Reason)
			case s.Signed != nil:
				// The joiner verified (or refused) the signature; the
				// decision's own record says which.
				var d decision.Decision
				if json.Unmarshal(s.Signed.Payload, &d) == nil {
					return fmt.Sprintf("signed decision (key %s): %s by %s: %q", s.Signed.KeyID, d.Action, or(d.Approver, "?"), d.Comment)
				}
				return "signed decision (unreadable payload)"
			}
			return fmt.Sprintf("unsigned, naming %s: %q", or(s.Approver, "(nobody)"), s.Comment)
		}
	case workflows.SignalRescind, workflows.SignalRevoke:
		var s workflows.RescindSignal
		if decode(p, &s) {
			return fmt.Sprintf("by %s via %s: %s", or(s.By, "?"), or(s.Via, "?"), s.Reason)
		}
	case workflows.SignalStartDateChange:
		var s workflows.StartDateSignal
		if decode(p, &s) {
			return fmt.Sprintf("hire date %s by %s", s.HireDate, or(s.By, "?"))
		}
	}
	return ""
}

func (r *Record) add(at time.Time, kind, what, detail string) {
	r.Timeline = append(r.Timeline, Entry{At: at, Kind: kind, What: what, Detail: detail})
}

func (r *Record) close(at time.Time, status string) {
	r.Closed, r.Status = &at, status
}

func or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func suffix(s string, ok bool) string {
	if ok {
		return s
	}
	return ""
}
