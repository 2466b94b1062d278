package hris_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/hris"
)

func TestIntegrationGetWorkerSeeded(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		var first hris.Worker
		for run := 1; run <= 2; run++ { // reads are repeatable
			ada, err := c.GetWorker(ctxT(t), "100")
			require.NoError(t, err)
			require.Equal(t, "100", ada.ID)
			require.Equal(t, "Ada", ada.FirstName)
			require.Equal(t, "Lovelace", ada.LastName)
			require.Equal(t, "Ada Lovelace", ada.DisplayName)
			require.Equal(t, "Engineering Manager", ada.JobTitle)
			require.Equal(t, "Engineering", ada.Department)
			require.Equal(t, "DE-Berlin", ada.Location)
			require.Equal(t, "1", ada.SupervisorID)
			require.Equal(t, "ada.lovelace", ada.Username)
			require.Equal(t, "ada.lovelace@joinery.test", ada.WorkEmail)
			require.Equal(t, "Active", ada.Status)
			require.NotEmpty(t, ada.LastChanged)
			if run == 1 {
				first = ada
			} else {
				require.Equal(t, first, ada)
			}
		}

		jose, err := c.GetWorker(ctxT(t), "200")
		require.NoError(t, err)
		require.Equal(t, "José", jose.FirstName)
		require.Equal(t, "Ñúñez", jose.LastName)
		require.Equal(t, "100", jose.SupervisorID)
		require.Empty(t, jose.WorkEmail, "a pending hire has no work e-mail yet")
		hire, err := time.Parse("2006-01-02", jose.HireDate)
		require.NoError(t, err)
		require.True(t, hire.After(time.Now()), "pending hire date %s must be in the future", jose.HireDate)

		grace, err := c.GetFields(ctxT(t), "1", []string{"supervisorEId", "customUsername", "firstName", "firstName"})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"supervisorEId": "", "customUsername": "grace.hopper", "firstName": "Grace"}, grace)
	})
}

func TestIntegrationGetWorkerNotFound(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		for range 2 {
			_, err := c.GetWorker(ctxT(t), "987654321")
			ce := requireClassified(t, err, hris.TypeNotFound, false)
			require.Contains(t, ce.Msg, "987654321")
			require.NotContains(t, err.Error(), tg.apiKey)
		}
		err := c.UpdateFields(ctxT(t), "987654321", map[string]string{"jobTitle": "x"})
		requireClassified(t, err, hris.TypeNotFound, false)
	})
}

func TestIntegrationUpdateAndReadBack(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		id := newEmployee(t, c, nil)
		before, err := c.GetWorker(ctxT(t), id)
		require.NoError(t, err)
		require.Equal(t, "Active", before.Status)
		require.Equal(t, id, before.EmployeeNumber)

		change := map[string]string{"jobTitle": "Site Reliability Engineer", "location": "UK-London", "preferredName": "Tess"}
		var afterFirst hris.Worker
		for run := 1; run <= 2; run++ {
			require.NoError(t, c.UpdateFields(ctxT(t), id, change), "run %d", run)
			got, err := c.GetWorker(ctxT(t), id)
			require.NoError(t, err)
			require.Equal(t, "Site Reliability Engineer", got.JobTitle)
			require.Equal(t, "UK-London", got.Location)
			require.Equal(t, "Tess "+before.LastName, got.DisplayName, "displayName follows preferredName")
			require.Equal(t, before.FirstName, got.FirstName, "fields not sent are untouched")
			if run == 1 {
				require.Greater(t, got.LastChanged, before.LastChanged, "lastChanged moves on a change")
				afterFirst = got
			} else {
				require.Equal(t, afterFirst, got, "repeating the update changes nothing")
			}
		}
	})
}

func TestIntegrationRejectedFieldsSurfaceTheMessage(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		id := newEmployee(t, c, nil)
		for range 2 {
			err := c.UpdateFields(ctxT(t), id, map[string]string{"jobTitle": "x", "shoeSize": "44"})
			ce := requireClassified(t, err, hris.TypeRejected, false)
			require.Contains(t, ce.Msg, `unknown field "shoeSize"`)

			_, err = c.GetFields(ctxT(t), id, []string{"firstName", "favouriteColour"})
			ce = requireClassified(t, err, hris.TypeRejected, false)
			require.Contains(t, ce.Msg, `unknown field "favouriteColour"`)

			err = c.UpdateFields(ctxT(t), id, map[string]string{"hireDate": "next tuesday"})
			ce = requireClassified(t, err, hris.TypeRejected, false)
			require.Contains(t, ce.Msg, `"hireDate"`)
		}
		// The rejected update wrote nothing, not even its valid part.
		got, err := c.GetWorker(ctxT(t), id)
		require.NoError(t, err)
		require.Empty(t, got.JobTitle)
	})
}

func TestIntegrationWriteBack(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		id := newEmployee(t, c, map[string]string{"homeEmail": "test@example.org"})
		// The joiner started and saw these values.
		expected := map[string]string{"customUsername": "", "workEmail": ""}
		want := map[string]string{"customUsername": "test.hris", "workEmail": "test.hris@joinery.test"}

		res, err := c.WriteBack(ctxT(t), id, want, expected)
		require.NoError(t, err)
		require.Equal(t, hris.WriteBackResult{Written: []string{"customUsername", "workEmail"}}, res)

		// A retried activity finds the work done.
		res, err = c.WriteBack(ctxT(t), id, want, expected)
		require.NoError(t, err)
		require.Equal(t, hris.WriteBackResult{AlreadySet: []string{"customUsername", "workEmail"}}, res)

		got, err := c.GetWorker(ctxT(t), id)
		require.NoError(t, err)
		require.Equal(t, "test.hris", got.Username)
		require.Equal(t, "test.hris@joinery.test", got.WorkEmail)
		require.Equal(t, "test@example.org", got.HomeEmail, "fields not in want are never touched")
	})
}

func TestIntegrationWriteBackNeverOverwritesAConcurrentChange(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		id := newEmployee(t, c, nil)
		// The joiner starts: it records what the HRIS holds.
		seen, err := c.GetFields(ctxT(t), id, []string{"workEmail", "customUsername"})
		require.NoError(t, err)

		// Behind Joinery's back, HR types an address by hand (another client,
		// as the HR UI would be).
		hr := newClient(t, tg)
		require.NoError(t, hr.UpdateFields(ctxT(t), id, map[string]string{"workEmail": "chosen.by.hr@joinery.test"}))

		want := map[string]string{"workEmail": "test.hris@joinery.test", "customUsername": "test.hris"}
		for run := 1; run <= 2; run++ {
			res, err := c.WriteBack(ctxT(t), id, want, seen)
			require.NoError(t, err, "run %d", run)
			require.Equal(t, []hris.FieldConflict{{
				Field: "workEmail", Expected: "", Current: "chosen.by.hr@joinery.test", Wanted: "test.hris@joinery.test",
			}}, res.Conflicts, "run %d", run)
			if run == 1 {
				require.Equal(t, []string{"customUsername"}, res.Written)
				require.Empty(t, res.AlreadySet)
			} else {
				require.Empty(t, res.Written)
				require.Equal(t, []string{"customUsername"}, res.AlreadySet)
			}
			got, err := c.GetWorker(ctxT(t), id)
			require.NoError(t, err)
			require.Equal(t, "chosen.by.hr@joinery.test", got.WorkEmail, "HR's value must survive")
			require.Equal(t, "test.hris", got.Username)
		}
	})
}

func TestIntegrationRateLimitRetryAfterHonoured(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		id := newEmployee(t, c, nil)
		injectFault(t, tg, id, http.StatusTooManyRequests, 1, 2, "slow down")
		start := time.Now()
		w, err := c.GetWorker(ctxT(t), id)
		require.NoError(t, err)
		require.Equal(t, id, w.ID)
		require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "two Retry-After: 1 pauses must be waited out")

		// The fault is used up: the next call is immediate.
		start = time.Now()
		_, err = c.GetWorker(ctxT(t), id)
		require.NoError(t, err)
		require.Less(t, time.Since(start), time.Second)

		// Writes are retried the same way (a 429 means nothing was written).
		injectFault(t, tg, id, http.StatusTooManyRequests, 1, 1, "slow down")
		require.NoError(t, c.UpdateFields(ctxT(t), id, map[string]string{"jobTitle": "Patient Engineer"}))
		got, err := c.GetWorker(ctxT(t), id)
		require.NoError(t, err)
		require.Equal(t, "Patient Engineer", got.JobTitle)
	})
}

func TestIntegrationRateLimitExhausted(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg, func(cfg *hris.Config) { cfg.RateLimitRetries = 1 })
		id := newEmployee(t, c, nil)
		injectFault(t, tg, id, http.StatusTooManyRequests, 1, 100, "quota exceeded")
		for range 2 {
			start := time.Now()
			_, err := c.GetWorker(ctxT(t), id)
			ce := requireClassified(t, err, hris.TypeRateLimited, true)
			require.Contains(t, ce.Msg, "quota exceeded")
			require.GreaterOrEqual(t, time.Since(start), time.Second, "the one allowed retry waits for Retry-After")
		}

		// A pause longer than the client's cap is handed to the caller at once.
		injectFault(t, tg, id, http.StatusTooManyRequests, 120, 1, "come back later")
		start := time.Now()
		_, err := c.GetWorker(ctxT(t), id)
		ce := requireClassified(t, err, hris.TypeRateLimited, true)
		require.Contains(t, ce.Msg, "2m0s")
		require.Less(t, time.Since(start), 2*time.Second)
	})
}

func TestIntegrationServerErrorIsTransient(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		id := newEmployee(t, c, nil)
		injectFault(t, tg, id, http.StatusInternalServerError, 0, 2, "database on fire")
		for range 2 {
			err := c.UpdateFields(ctxT(t), id, map[string]string{"jobTitle": "x"})
			ce := requireClassified(t, err, hris.TypeUnavailable, true)
			require.Contains(t, ce.Msg, "database on fire")
			require.Contains(t, ce.Msg, "500")
		}
		// Recovered: the retry Temporal would make succeeds.
		require.NoError(t, c.UpdateFields(ctxT(t), id, map[string]string{"jobTitle": "x"}))

		injectFault(t, tg, id, http.StatusServiceUnavailable, 0, 1, "")
		_, err := c.GetWorker(ctxT(t), id)
		requireClassified(t, err, hris.TypeUnavailable, true)
	})
}

func TestIntegrationWrongAPIKeyIsPermanent(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		const badKey = "definitely-not-the-key-4711"
		c := newClient(t, tg, func(cfg *hris.Config) { cfg.APIKey = badKey })
		for range 2 {
			_, err := c.GetWorker(ctxT(t), "100")
			requireClassified(t, err, hris.TypeUnauthorized, false)
			require.NotContains(t, err.Error(), badKey)
			err = c.UpdateFields(ctxT(t), "100", map[string]string{"jobTitle": "Pwned"})
			requireClassified(t, err, hris.TypeUnauthorized, false)
			require.NotContains(t, err.Error(), badKey)
		}
		ada, err := newClient(t, tg).GetWorker(ctxT(t), "100")
		require.NoError(t, err)
		require.Equal(t, "Engineering Manager", ada.JobTitle)

		// The company is part of the path: a wrong one is refused too.
		wrong := newClient(t, tg, func(cfg *hris.Config) { cfg.Company = "someone-else" })
		_, err = wrong.GetWorker(ctxT(t), "100")
		requireClassified(t, err, hris.TypeNotFound, false)
	})
}

func TestIntegrationUnreachableIsTransient(t *testing.T) {
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	c, err := hris.New(hris.Config{BaseURL: "http://127.0.0.1:1", Company: "joinery", APIKey: "secret-key-123"})
	require.NoError(t, err)
	for range 2 {
		_, err = c.GetWorker(ctxT(t), "100")
		requireClassified(t, err, hris.TypeUnavailable, true)
		require.NotContains(t, err.Error(), "secret-key-123")
	}
}

func TestIntegrationTimeoutIsTransient(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := newLoopbackServer(t, slow)
	c, err := hris.New(hris.Config{BaseURL: srv, Company: "joinery", APIKey: "k", Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	_, err = c.GetWorker(ctxT(t), "100")
	requireClassified(t, err, hris.TypeUnavailable, true)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestIntegrationAddEmployee(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := newClient(t, tg)
		a := newEmployee(t, c, map[string]string{"employmentHistoryStatus": "Contractor", "supervisorEId": "100"})
		b := newEmployee(t, c, nil)
		require.NotEqual(t, a, b, "AddEmployee is not idempotent: each call creates a record")
		w, err := c.GetWorker(ctxT(t), a)
		require.NoError(t, err)
		require.Equal(t, "Contractor", w.EmploymentStatus)
		require.Equal(t, "100", w.SupervisorID)
		require.True(t, strings.HasPrefix(w.LastName, "Hris"))

		_, err = c.AddEmployee(ctxT(t), map[string]string{"firstName": "No", "lastName": "Boss", "supervisorEId": "987654321"})
		ce := requireClassified(t, err, hris.TypeRejected, false)
		require.Contains(t, ce.Msg, "supervisorEId")
	})
}
