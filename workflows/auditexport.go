package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
)

// auditBatch is the most entries one ExportAudit call takes.
const auditBatch = 200

// exportAudit appends what the joiner's record gained since the last export
// — its events, its decisions (refused attempts too) and, when final, its
// outcome — to the worker's audit file (activities.ExportAudit), which
// outlives Temporal's retention. Each entry's Seq is its position in this
// joiner's export, kept in workflow state, so a retried activity re-sends
// the same keys and the file keeps one copy. A failed export is recorded
// and retried with the next one; it never fails the joiner (the history
// holds everything until retention).
func (j *joiner) exportAudit(ctx workflow.Context, final bool) {
	if j.laterVersion(ctx, "audit-export") < 1 {
		return
	}
	seq, events, decisions := j.auditSeq, j.auditEvents, j.auditDecisions
	var es []activities.AuditEntry
	add := func(e activities.AuditEntry) {
		seq++
		e.Seq = seq
		es = append(es, e)
	}
	for ; events < len(j.status.Events); events++ {
		ev := j.status.Events[events]
		add(activities.AuditEntry{At: ev.At, Kind: "event", Text: ev.What})
	}
	for ; decisions < len(j.status.Approvals); decisions++ {
		d := j.status.Approvals[decisions]
		approved := d.Approved && d.Refused == ""
		add(activities.AuditEntry{At: d.At, Kind: "decision", Actor: d.Approver, Approved: &approved,
			Comment: d.Comment, Reason: d.Refused, Text: d.Via})
	}
	if final {
		r := j.result
		add(activities.AuditEntry{At: workflow.Now(ctx), Kind: "outcome", Outcome: r.Outcome, Stage: string(r.Stage),
			PolicyVersion: r.PolicyVersion, Username: r.Username, DN: r.DN, Groups: r.Groups, Error: r.Error})
	}
	// A disconnected context: a cancelled joiner's record is exported too.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	regular := !final && j.decidedByUpdateNow(ctx) // localsteps.go
	for len(es) > 0 {
		n := min(len(es), auditBatch)
		in := activities.ExportAuditInput{Key: j.in.HRISID, Entries: es[:n]}
		var err error
		if regular {
			err = workflow.ExecuteActivity(withOptions(dctx, optsAudit), a.ExportAudit, in).Get(dctx, nil)
		} else {
			err = j.step(dctx, "ExportAudit", a.ExportAudit, optsAudit, in, nil)
		}
		if err != nil {
			j.event(ctx, "could not export the audit record (retried with the next export): "+rootMessage(err))
			return
		}
		es = es[n:]
	}
	j.auditSeq, j.auditEvents, j.auditDecisions = seq, events, decisions
}
