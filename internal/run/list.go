package run

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// Row is one joiner in a list.
type Row struct {
	WorkflowID string `json:"workflowId"`
	HRISID     string `json:"hrisId"`
	Stage      string `json:"stage"`
	Kind       string `json:"kind"`
	// Manager is the JoinerManager search attribute: the manager's keyed
	// pseudonym (internal/pseudonym), a username only for joiners planned
	// before pseudonyms. `starter list --manager X` shows X for its rows.
	Manager    string     `json:"manager"`
	Department string     `json:"department"`
	Started    time.Time  `json:"started"`
	Expiry     *time.Time `json:"expiry,omitempty"`
	Status     string     `json:"status"`
}

// List runs a visibility query (the same the Web UI runs) and returns up to
// limit joiners, newest first.
func List(ctx context.Context, c client.Client, query string, limit int) ([]Row, error) {
	var rows []Row
	var token []byte
	dc := converter.GetDefaultDataConverter()
	for len(rows) < limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: int32(min(limit, 1000))})
		if err != nil {
			return nil, fmt.Errorf("list joiners (%s): %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			r := Row{WorkflowID: e.GetExecution().GetWorkflowId(), Started: e.GetStartTime().AsTime(),
				Status: e.GetStatus().String()}
			fields := e.GetSearchAttributes().GetIndexedFields()
			get := func(name string) string {
				var v string
				if p, ok := fields[name]; ok {
					_ = dc.FromPayload(p, &v)
				}
				return v
			}
			r.HRISID, r.Stage, r.Kind = get("HRISID"), get("JoinerStage"), get("JoinerKind")
			r.Manager, r.Department = get("JoinerManager"), get("JoinerDepartment")
			if p, ok := fields["JoinerExpiry"]; ok {
				var t time.Time
				if dc.FromPayload(p, &t) == nil {
					r.Expiry = &t
				}
			}
			rows = append(rows, r)
			if len(rows) == limit {
				break
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	return rows, nil
}
