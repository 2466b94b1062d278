package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// SCIM URNs (RFC 7643, RFC 7644) used by Microsoft Entra's API-driven
// inbound provisioning (the /bulkUpload payload).
const (
	SCIMBulkRequestURN  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SCIMBulkResponseURN = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	SCIMErrorURN        = "urn:ietf:params:scim:api:messages:2.0:Error"
	SCIMUserURN         = "urn:ietf:params:scim:schemas:core:2.0:User"
	SCIMEnterpriseURN   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	scimExtensionPrefix = "urn:ietf:params:scim:schemas:extension:"
)

// MaxSCIMOperations bounds the operations of one SCIM bulk request. Entra's
// API-driven inbound provisioning sends at most 50 per request (its
// documented limit), so more is not Entra and is refused whole (413, SCIM
// error) rather than half carried out.
const MaxSCIMOperations = 50

// scimActor is who the joiner records as the requester of SCIM starts.
const scimActor = "scim-bulk"

type scimBulkRequest struct {
	Schemas      []string        `json:"schemas"`
	Operations   []scimOperation `json:"Operations"`
	FailOnErrors *int            `json:"failOnErrors"`
}

type scimOperation struct {
	Method string          `json:"method"`
	BulkID string          `json:"bulkId"`
	Path   string          `json:"path"`
	Data   json.RawMessage `json:"data"`
}

// scimUser is the part of a SCIM User (core + enterprise extension) that
// Joinery reads. Other attributes (addresses, phoneNumbers, ...) are
// accepted and ignored: the workflow reads the HR record itself.
type scimUser struct {
	Schemas    []string `json:"schemas"`
	ExternalID string   `json:"externalId"`
	UserName   string   `json:"userName"`
	Name       *struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Emails []struct {
		Value   string `json:"value"`
		Type    string `json:"type"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
	Active     *bool  `json:"active"`
	UserType   string `json:"userType"`
	Enterprise *struct {
		EmployeeNumber string `json:"employeeNumber"`
		Department     string `json:"department"`
		Manager        *struct {
			Value string `json:"value"`
		} `json:"manager"`
	} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

// SCIMError is a SCIM error response (RFC 7644 §3.12). Error and Field
// repeat Detail and name the offending attribute, in the shape every intake
// error has.
type SCIMError struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	SCIMType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail"`
	Error    string   `json:"error"`
	Field    string   `json:"field,omitempty"`
}

// SCIMOperationResult is one entry of a BulkResponse.
type SCIMOperationResult struct {
	Method string `json:"method"`
	BulkID string `json:"bulkId,omitempty"`
	// Location is the joiner's page in the Temporal Web UI: the joiner is
	// the resource this operation created.
	Location string `json:"location,omitempty"`
	Status   string `json:"status"`
	// Response is a SCIMError for a failed operation, otherwise what
	// Joinery did (SCIMOperationDetail).
	Response any `json:"response,omitempty"`
}

// SCIMOperationDetail tells the caller what became of a successful operation.
type SCIMOperationDetail struct {
	HRISID     string `json:"hrisId"`
	Outcome    string `json:"outcome"`
	WorkflowID string `json:"workflowId"`
	Detail     string `json:"detail,omitempty"`
}

// SCIMBulkResponse is the answer to a SCIM bulk request.
type SCIMBulkResponse struct {
	Schemas    []string              `json:"schemas"`
	Operations []SCIMOperationResult `json:"Operations"`
}

// scimPlan is one validated operation.
type scimPlan struct {
	bulkID string
	joiner Joiner
	active bool
}

func writeSCIMError(w http.ResponseWriter, status int, scimType string, fe *FieldError) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(SCIMError{Schemas: []string{SCIMErrorURN}, Status: strconv.Itoa(status),
		SCIMType: scimType, Detail: fe.Error(), Error: fe.Reason, Field: fe.Field})
}

// scimFields maps Joiner fields to the SCIM attribute paths they come from.
var scimFields = map[string]string{
	"hrisId":     SCIMEnterpriseURN + ".employeeNumber",
	"department": SCIMEnterpriseURN + ".department",
	"managerId":  SCIMEnterpriseURN + ".manager.value",
	"firstName":  "name.givenName",
	"lastName":   "name.familyName",
	"email":      "emails",
}

// parseSCIMOperation validates operation i; errors name the attribute by
// its path in the request (Operations[i].data.name.givenName).
func parseSCIMOperation(i int, op scimOperation) (scimPlan, *FieldError) {
	prefix := fmt.Sprintf("Operations[%d].", i)
	bad := func(field, format string, args ...any) (scimPlan, *FieldError) {
		return scimPlan{}, &FieldError{Field: prefix + field, Reason: fmt.Sprintf(format, args...)}
	}
	if op.Method != http.MethodPost {
		return bad("method", "%q: only POST is supported (Joinery decides create or update itself)", clip(op.Method, 20))
	}
	if p := strings.TrimSuffix(op.Path, "/"); p != "/Users" {
		return bad("path", "%q: only /Users is supported", clip(op.Path, 40))
	}
	bulkID := strings.TrimSpace(op.BulkID)
	if bulkID == "" {
		return bad("bulkId", "required")
	}
	if len(bulkID) > MaxEventIDLen || !eventIDRE.MatchString(bulkID) {
		return bad("bulkId", "want 1-%d printable ASCII characters without spaces", MaxEventIDLen)
	}
	if len(op.Data) == 0 || string(op.Data) == "null" {
		return bad("data", "required")
	}
	var u scimUser
	if err := json.Unmarshal(op.Data, &u); err != nil {
		fe := jsonError(err)
		if fe.Field == "body" {
			fe.Field = ""
		}
		return bad(strings.TrimSuffix("data."+fe.Field, "."), "%s", fe.Reason)
	}
	if !slices.Contains(u.Schemas, SCIMUserURN) {
		return bad("data.schemas", "must include %s", SCIMUserURN)
	}
	j := Joiner{RequestedBy: scimActor, EventID: "scim:" + bulkID}
	if u.Enterprise != nil {
		j.HRISID, j.Department = u.Enterprise.EmployeeNumber, u.Enterprise.Department
		if u.Enterprise.Manager != nil {
			j.ManagerID = u.Enterprise.Manager.Value
		}
	}
	if u.Name != nil {
		j.FirstName, j.LastName = u.Name.GivenName, u.Name.FamilyName
	}
	for k, e := range u.Emails {
		if fe := checkEmail("email", strings.TrimSpace(e.Value)); fe != nil {
			return bad(fmt.Sprintf("data.emails[%d].value", k), "%s", fe.Reason)
		}
		if j.Email == "" || e.Primary {
			j.Email = e.Value
		}
	}
	// userType is free text in SCIM ("Employee", "Contractor", but also
	// Entra's "Member"/"Guest"): it is a kind only when it names one.
	if ut := strings.ToLower(strings.TrimSpace(u.UserType)); policy.IsKnownKind(ut) {
		j.Kind = ut
	}
	extFields := map[string]string{}
	if fe := readSCIMExtensions(op.Data, &j, extFields); fe != nil {
		return bad("data."+fe.Field, "%s", fe.Reason)
	}
	nj, err := Normalize(j)
	if err != nil {
		fe := err.(*FieldError)
		name, ok := extFields[fe.Field]
		if !ok {
			name, ok = scimFields[fe.Field]
		}
		if !ok {
			name = fe.Field
		}
		if fe.Field == "hrisId" && fe.Reason == "required" {
			return bad("data."+name, "required: the employeeNumber is the HR record ID")
		}
		if fe.Field == "eventId" {
			return bad("bulkId", "%s", fe.Reason)
		}
		return bad("data."+name, "%s", fe.Reason)
	}
	return scimPlan{bulkID: bulkID, joiner: nj, active: u.Active == nil || *u.Active}, nil
}

// readSCIMExtensions reads Joinery's attributes from any custom schema
// extension (e.g. urn:ietf:params:scim:schemas:extension:contoso:1.0:User),
// matched case-insensitively: hireDate, endDate and kind (or joinerKind).
// extFields records which attribute supplied each, for error paths.
func readSCIMExtensions(data json.RawMessage, j *Joiner, extFields map[string]string) *FieldError {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return &FieldError{Reason: "want a JSON object"}
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic when two extensions set one attribute
	for _, urn := range keys {
		if !strings.HasPrefix(strings.ToLower(urn), scimExtensionPrefix) || strings.EqualFold(urn, SCIMEnterpriseURN) {
			continue
		}
		var attrs map[string]json.RawMessage
		if err := json.Unmarshal(top[urn], &attrs); err != nil {
			return &FieldError{Field: urn, Reason: "want an object of extension attributes"}
		}
		for name, raw := range attrs {
			var dst *string
			var field string
			switch strings.ToLower(name) {
			case "hiredate":
				dst, field = &j.HireDate, "hireDate"
			case "enddate":
				dst, field = &j.EndDate, "endDate"
			case "kind", "joinerkind":
				dst, field = &j.Kind, "kind"
			default:
				continue
			}
			var v *string
			if err := json.Unmarshal(raw, &v); err != nil {
				return &FieldError{Field: urn + "." + name, Reason: "want a string"}
			}
			if v != nil && strings.TrimSpace(*v) != "" {
				*dst = *v
				extFields[field] = urn + "." + name
			}
		}
	}
	return nil
}

// handleSCIM is POST /scim/v2/Bulk in the shape of Entra's API-driven
// inbound provisioning. Like Entra's own /bulkUpload it validates the whole
// request first: a request that breaks the schema is answered 400 naming
// the attribute, and nothing is started. Then each operation is carried out
// in order: an active user starts a joiner (201, or 200 when the duplicate
// collapsed), an inactive one rescinds the running joiner. failOnErrors is
// honoured for Temporal failures (503 per operation) and for operations
// the full blast-radius hold had no room for (429 per operation, and
// Retry-After on the answer).
func (s *Server) handleSCIM(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="joinery-intake"`)
		writeSCIMError(w, http.StatusUnauthorized, "", errUnauthorized())
		return
	}
	switch ct := contentType(r); ct {
	case "application/scim+json", "application/json":
	default:
		writeSCIMError(w, http.StatusUnsupportedMediaType, "", fieldErr("Content-Type", "want application/scim+json, got %q", clip(ct, 60)))
		return
	}
	if !s.allow(w, r, SourceSCIM, true) {
		return
	}
	body, status, fe := readBody(w, r, orInt64(s.MaxBody, DefaultMaxBody))
	if fe != nil {
		writeSCIMError(w, status, "", fe)
		return
	}
	var req scimBulkRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeSCIMError(w, http.StatusBadRequest, "invalidSyntax", jsonError(err))
		return
	}
	plans, fe := validateSCIM(req)
	if fe != nil {
		code, typ := http.StatusBadRequest, "invalidValue"
		if fe.Field == "Operations" && strings.HasPrefix(fe.Reason, "too many") {
			code, typ = http.StatusRequestEntityTooLarge, "tooMany"
		}
		s.logger().Warn("scim bulk invalid", "request_id", requestID(r.Context()), "field", fe.Field)
		writeSCIMError(w, code, typ, fe)
		return
	}
	failLimit := 0
	if req.FailOnErrors != nil {
		failLimit = *req.FailOnErrors
	}
	resp := SCIMBulkResponse{Schemas: []string{SCIMBulkResponseURN}, Operations: []SCIMOperationResult{}}
	failures, full := 0, false
	for _, p := range plans {
		res, outcome, reason := s.carryOutSCIM(r.Context(), p)
		if res.Status == "503" || res.Status == "429" {
			failures++
		}
		full = full || outcome == OutcomeHoldFull
		s.logRow(r.Context(), SourceSCIM, outcome, reason, slog.String("hris_id", p.joiner.HRISID), slog.String("status", res.Status))
		resp.Operations = append(resp.Operations, res)
		if failLimit > 0 && failures >= failLimit {
			break // RFC 7644 §3.7.3: stop after failOnErrors errors
		}
	}
	if full {
		// The bulk answer is 200 with a status per operation (RFC 7644
		// §3.7); the held-back operations say 429, and Retry-After tells
		// the client when to send them again, as Microsoft Graph's
		// throttling guidance has every Graph client (Entra's inbound
		// provisioning scripts among them) wait before a retry.
		s.setHoldFullRetryAfter(w)
	}
	w.Header().Set("Content-Type", "application/scim+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
}

// validateSCIM checks the request as a whole and every operation.
func validateSCIM(req scimBulkRequest) ([]scimPlan, *FieldError) {
	if !slices.Contains(req.Schemas, SCIMBulkRequestURN) {
		return nil, fieldErr("schemas", "must include %s", SCIMBulkRequestURN)
	}
	if len(req.Operations) == 0 {
		return nil, fieldErr("Operations", "required: at least one operation")
	}
	if len(req.Operations) > MaxSCIMOperations {
		return nil, fieldErr("Operations", "too many operations (%d, at most %d)", len(req.Operations), MaxSCIMOperations)
	}
	if req.FailOnErrors != nil && *req.FailOnErrors < 0 {
		return nil, fieldErr("failOnErrors", "must not be negative")
	}
	plans := make([]scimPlan, 0, len(req.Operations))
	seen := map[string]bool{}
	for i, op := range req.Operations {
		p, fe := parseSCIMOperation(i, op)
		if fe != nil {
			return nil, fe
		}
		if seen[p.bulkID] {
			return nil, fieldErr(fmt.Sprintf("Operations[%d].bulkId", i), "%q is used twice in this request", clip(p.bulkID, 40))
		}
		seen[p.bulkID] = true
		plans = append(plans, p)
	}
	return plans, nil
}

// carryOutSCIM performs one operation and returns its result, and the
// row's outcome and refusal reason for the log and the metrics.
func (s *Server) carryOutSCIM(ctx context.Context, p scimPlan) (res SCIMOperationResult, outcome, reason string) {
	res = SCIMOperationResult{Method: http.MethodPost, BulkID: p.bulkID}
	detail := SCIMOperationDetail{HRISID: p.joiner.HRISID, WorkflowID: workflows.JoinerWorkflowID(p.joiner.HRISID)}
	fail := func(err error) (SCIMOperationResult, string, string) {
		if errors.Is(err, ErrHoldFull) {
			fe := holdFullError(err)
			res.Status = "429"
			res.Response = SCIMError{Schemas: []string{SCIMErrorURN}, Status: "429", Detail: fe.Reason, Error: fe.Reason, Field: fe.Field}
			return res, OutcomeHoldFull, ""
		}
		res.Status = "503"
		res.Response = SCIMError{Schemas: []string{SCIMErrorURN}, Status: "503", Detail: err.Error(), Error: err.Error()}
		return res, OutcomeError, ""
	}
	if !p.active {
		o := guardedRescind(ctx, s.Starter, p.joiner.HRISID,
			workflows.RescindSignal{By: scimActor, Reason: "SCIM upload marked the user inactive"}, "scim")
		switch {
		case o.err != nil:
			return fail(o.err)
		case o.held != nil:
			detail.Outcome, detail.Detail = OutcomeHeld, o.held.Detail+" (hold key "+o.held.Key+")"
			res.Status, res.Response = "202", detail
			return res, OutcomeHeld, ""
		case o.signalled:
			detail.Outcome, detail.Detail = OutcomeSignalled, "rescind sent: the user is inactive"
		default:
			detail.Outcome, detail.Detail = OutcomeIgnored, "inactive user with no running joiner"
		}
		res.Status, res.Response = "200", detail
		return res, detail.Outcome, ""
	}
	sctx, cancel := s.startCtx(ctx)
	defer cancel()
	o := guardedStart(sctx, s.Starter, p.joiner.Input("scim"))
	switch {
	case o.err != nil:
		return fail(o.err)
	case o.refusal != nil:
		res.Status = "422"
		res.Response = SCIMError{Schemas: []string{SCIMErrorURN}, Status: "422", SCIMType: "invalidValue",
			Detail: o.refusal.Reason + ": " + o.refusal.Error, Error: o.refusal.Error, Field: o.refusal.Field}
		return res, OutcomeRefused, o.refusal.Reason
	case o.held != nil:
		detail.Outcome, detail.Detail = OutcomeHeld, o.held.Detail+" (hold key "+o.held.Key+")"
		res.Status, res.Response = "202", detail
		return res, OutcomeHeld, ""
	}
	sr := *o.res
	detail.Outcome, detail.WorkflowID = string(sr.Outcome), sr.WorkflowID
	res.Location, res.Status, res.Response = sr.UIURL, "200", detail
	if sr.Outcome == run.Started {
		res.Status = "201"
	}
	return res, detail.Outcome, ""
}
