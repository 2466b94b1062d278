package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sitesPolicy is the minimal policy with a sites section.
func sitesPolicy(t *testing.T, sites string) (*Policy, error) {
	t.Helper()
	base, err := os.ReadFile(filepath.Join(policyDir, "minimal.yaml"))
	require.NoError(t, err)
	return Parse(append(base, []byte(sites)...))
}

func TestSitesMapLocationsToZones(t *testing.T) {
	p, err := sitesPolicy(t, `
sites:
  default_zone: Europe/London
  zones:
    DE-Berlin: Europe/Berlin
    US-Boston: America/New_York
`)
	require.NoError(t, err)
	require.Equal(t, "Europe/Berlin", p.ZoneFor("DE-Berlin"))
	require.Equal(t, "Europe/Berlin", p.ZoneFor(" DE-Berlin "), "HR values are trimmed")
	require.Equal(t, "America/New_York", p.ZoneFor("US-Boston"))
	require.Equal(t, "Europe/London", p.ZoneFor("NL-Amsterdam"), "an unlisted location gets the default zone")
	require.Equal(t, "Europe/London", p.ZoneFor(""))

	none, err := sitesPolicy(t, "")
	require.NoError(t, err)
	require.Equal(t, "UTC", none.ZoneFor("DE-Berlin"), "without sites, UTC as before")
}

func TestSitesRefuseUnknownZones(t *testing.T) {
	for name, tc := range map[string]struct{ sites, want string }{
		"typo":          {"sites:\n  zones:\n    DE-Berlin: Europe/Berln\n", `sites.zones.DE-Berlin: unknown time zone "Europe/Berln"`},
		"default typo":  {"sites:\n  default_zone: Mars/Olympus\n", `sites.default_zone: unknown time zone "Mars/Olympus"`},
		"machine local": {"sites:\n  default_zone: Local\n", `sites.default_zone: time zone "Local" is the worker machine's own zone`},
		"empty zone":    {"sites:\n  zones:\n    DE-Berlin: \"\"\n", `sites.zones.DE-Berlin: a time zone is required`},
		"path":          {"sites:\n  zones:\n    X: ../../etc/passwd\n", `sites.zones.X: unknown time zone "../../etc/passwd"`},
		"unknown key":   {"sites:\n  zone: Europe/Berlin\n", `unknown field "zone"`},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := sitesPolicy(t, tc.sites)
			require.Nil(t, p, "a policy naming an unknown zone does not load")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestPlanRecordsZoneAndLocalMidnights(t *testing.T) {
	p, err := sitesPolicy(t, `
sites:
  zones:
    DE-Berlin: Europe/Berlin
    US-Boston: America/New_York
`)
	require.NoError(t, err)
	w := Worker{HRISID: "1", FirstName: "Ada", LastName: "Byron", Kind: KindEmployee, ManagerUsername: "grace.hopper",
		HireDate: "2026-12-01", Location: "DE-Berlin"}
	plan, err := p.Plan(w)
	require.NoError(t, err)
	require.Equal(t, "Europe/Berlin", plan.TimeZone)
	require.Equal(t, "2026-11-24", plan.ProvisionDate)
	// Berlin is UTC+1 in winter: its midnight is 23:00Z the day before.
	require.Equal(t, time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC), *plan.ProvisionAt)
	require.Equal(t, time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC), *plan.StartsAt)
	require.Nil(t, plan.ExpiresAt, "no end date, no expiry")

	w.Location = "US-Boston"
	plan, err = p.Plan(w)
	require.NoError(t, err)
	require.Equal(t, "America/New_York", plan.TimeZone)
	require.Equal(t, time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC), *plan.ProvisionAt, "Boston is UTC-5 in November")

	w.Location = "NL-Amsterdam"
	plan, err = p.Plan(w)
	require.NoError(t, err)
	require.Equal(t, "UTC", plan.TimeZone)
	require.Equal(t, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), *plan.ProvisionAt)
}

func TestDayStartAcrossDST(t *testing.T) {
	zone := func(name string) *time.Location {
		loc, err := LoadZone(name)
		require.NoError(t, err)
		return loc
	}
	berlin, havana, santiago := zone("Europe/Berlin"), zone("America/Havana"), zone("America/Santiago")
	for _, tc := range []struct {
		name  string
		date  string
		loc   *time.Location
		want  time.Time
		local string
	}{
		// Berlin springs forward at 02:00 on 2027-03-28: that day still
		// starts at +01:00, the next at +02:00 — 23h apart, not 24h.
		{"day of the spring change", "2027-03-28", berlin, time.Date(2027, 3, 27, 23, 0, 0, 0, time.UTC), "2027-03-28 00:00:00 +0100"},
		{"day after the spring change", "2027-03-29", berlin, time.Date(2027, 3, 28, 22, 0, 0, 0, time.UTC), "2027-03-29 00:00:00 +0200"},
		{"day after the autumn change", "2026-10-26", berlin, time.Date(2026, 10, 25, 23, 0, 0, 0, time.UTC), "2026-10-26 00:00:00 +0100"},
		// Havana springs forward at midnight (00:00 -> 01:00): there is no
		// midnight; the day starts at the transition.
		{"midnight that does not exist", "2027-03-14", havana, time.Date(2027, 3, 14, 5, 0, 0, 0, time.UTC), "2027-03-14 01:00:00 -0400"},
		// Havana falls back at 01:00 to 00:00: midnight happens twice;
		// the day starts at the first.
		{"midnight that happens twice", "2026-11-01", havana, time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC), "2026-11-01 00:00:00 -0400"},
		// Santiago springs forward at 24:00 on the first Saturday of
		// September.
		{"Santiago's missing midnight", "2026-09-06", santiago, time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC), "2026-09-06 01:00:00 -0300"},
		{"UTC", "2026-12-01", time.UTC, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "2026-12-01 00:00:00 +0000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DayStart(tc.date, tc.loc)
			require.NoError(t, err)
			require.True(t, tc.want.Equal(got), "got %s (%s), want %s", got.UTC(), got, tc.want)
			require.Equal(t, tc.local, got.Format("2006-01-02 15:04:05 -0700"))
			prev := got.Add(-time.Second).In(tc.loc).Format(time.DateOnly)
			require.Less(t, prev, tc.date, "the second before belongs to the day before")
		})
	}
	_, err := DayStart("2026-13-01", berlin)
	require.ErrorContains(t, err, "not a date")
}

func TestZoneDayStartRefusesBadInput(t *testing.T) {
	for _, z := range []string{"", "Local", "Europe/Berln", "../../etc/passwd"} {
		_, err := ZoneDayStart(z, "2026-12-01")
		require.Error(t, err, z)
	}
	got, err := ZoneDayStart("Asia/Kolkata", "2026-12-01")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 30, 18, 30, 0, 0, time.UTC), got.UTC(), "half-hour offsets too")
}

func TestCheckStartMove(t *testing.T) {
	p := Plan{Kind: KindContractor, HireDate: "2026-12-01", EndDate: "2027-05-31", MaxLifetime: 180 * 24 * time.Hour}
	require.NoError(t, p.CheckStartMove("2026-12-15"), "a later start within the end date")
	require.NoError(t, p.CheckStartMove("2027-05-31"), "a one-day engagement")
	for start, want := range map[string]string{
		"2027-06-01": "the new start 2027-06-01 is after the end date 2027-05-31",
		"2026-11-01": "the end date 2027-05-31 is 211 days after the new start 2026-11-01; kind contractor may last at most 180 days",
		"01/12/2026": "not a date",
	} {
		err := p.CheckStartMove(start)
		require.Error(t, err, start)
		require.True(t, strings.Contains(err.Error(), want), "%s: %v", start, err)
	}
	require.NoError(t, Plan{Kind: KindEmployee, HireDate: "2026-12-01"}.CheckStartMove("2028-01-01"), "no end date: nothing to check")
}

func TestDefaultPolicyKnowsTheSeedSites(t *testing.T) {
	p := loadDefault(t)
	for loc, zone := range map[string]string{"DE-Berlin": "Europe/Berlin", "UK-London": "Europe/London",
		"NL-Amsterdam": "Europe/Amsterdam", "US-NewYork": "America/New_York", "Atlantis": "UTC"} {
		require.Equal(t, zone, p.ZoneFor(loc), loc)
	}
}
