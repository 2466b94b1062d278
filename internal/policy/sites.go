package policy

import (
	"fmt"
	"strings"
	"time"

	// The IANA time zone database, embedded: a worker image without
	// /usr/share/zoneinfo (distroless, scratch) still loads every zone a
	// policy names. Go prefers the system database when there is one; the
	// instants a joiner waits for are computed in activities and recorded
	// in its history, so two workers with different database versions
	// never make one joiner's replay diverge (see DayStart).
	_ "time/tzdata"
)

// Sites: provisioning and expiry happen at local midnight of the joiner's
// site, not at 00:00 UTC (which is 01:00 in Berlin and 19:00 the evening
// before in Boston). The policy's `sites` section maps HR locations to IANA
// zones:
//
//	sites:
//	  default_zone: Europe/Berlin      # a location not listed; UTC if empty
//	  zones:
//	    DE-Berlin: Europe/Berlin
//	    US-Boston: America/New_York
//
// A zone the time zone database does not know makes the policy fail to load,
// naming the location, so a typo never silently means UTC.

// sites is the compiled `sites` section.
type sites struct {
	defaultZone string
	zones       map[string]string
	locs        map[string]*time.Location // by zone name
}

// maxSites bounds the zone table (a policy is not a gazetteer).
const maxSites = 1000

func (b *builder) buildSites(raw rawSites) {
	s := sites{defaultZone: "UTC", zones: map[string]string{}, locs: map[string]*time.Location{}}
	load := func(path, zone string) bool {
		loc, err := LoadZone(zone)
		if err != nil {
			b.fail(path, "%v", err)
			return false
		}
		s.locs[zone] = loc
		return true
	}
	if raw.DefaultZone != "" {
		if load("sites.default_zone", raw.DefaultZone) {
			s.defaultZone = raw.DefaultZone
		}
	} else {
		s.locs["UTC"] = time.UTC
	}
	if len(raw.Zones) > maxSites {
		b.fail("sites.zones", "%d locations; at most %d", len(raw.Zones), maxSites)
	}
	for _, location := range sortedKeys(raw.Zones) {
		path := "sites.zones." + location
		switch {
		case strings.TrimSpace(location) == "" || location != strings.TrimSpace(location):
			b.fail(path, "a location must be non-empty without surrounding spaces (HR values are trimmed)")
			continue
		case len(location) > maxFieldLen:
			b.fail(path, "location is %d bytes long; the limit is %d", len(location), maxFieldLen)
			continue
		}
		if load(path, raw.Zones[location]) {
			s.zones[location] = raw.Zones[location]
		}
	}
	b.p.sites = s
}

// LoadZone loads an IANA zone by name. It refuses "" and "Local" (the
// worker machine's own zone: a joiner's dates must not depend on which
// host runs it) and names the zone it could not find.
func LoadZone(zone string) (*time.Location, error) {
	switch zone {
	case "":
		return nil, fmt.Errorf("a time zone is required: an IANA name such as Europe/Berlin")
	case "Local":
		return nil, fmt.Errorf("time zone %q is the worker machine's own zone; name the site's zone, e.g. Europe/Berlin", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want an IANA name such as Europe/Berlin or America/New_York", zone)
	}
	return loc, nil
}

// ZoneFor returns the time zone of an HR location: its entry under
// sites.zones, else sites.default_zone (UTC when the policy has none).
func (p *Policy) ZoneFor(location string) string {
	if z, ok := p.sites.zones[strings.TrimSpace(location)]; ok {
		return z
	}
	if p.sites.defaultZone == "" {
		return "UTC"
	}
	return p.sites.defaultZone
}

// location returns the loaded zone (loaded when the policy was parsed).
func (p *Policy) location(zone string) *time.Location {
	if loc, ok := p.sites.locs[zone]; ok {
		return loc
	}
	return time.UTC
}

// DayStart returns the first instant of the calendar day date (YYYY-MM-DD)
// in loc: local midnight, as an absolute instant.
//
// It is computed for that date's own offset, so a day after a DST change
// starts at the new offset (Berlin: 2027-03-28 begins at 23:00Z the day
// before, 2027-03-29 at 22:00Z); adding 24h to an earlier midnight would be
// an hour off. Where midnight does not exist (zones that spring forward at
// 00:00, e.g. America/Havana and America/Santiago) the day starts at the
// transition, 01:00 local; where it happens twice (a fall-back from 01:00
// to 00:00, e.g. America/Havana in November) the day starts at the first.
// time.Date leaves both cases unspecified, so the instant is searched for:
// the first second whose local date is date.
func DayStart(date string, loc *time.Location) (time.Time, error) {
	d, err := time.Parse(dateLayout, date)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date in YYYY-MM-DD form", date)
	}
	if loc == nil {
		loc = time.UTC
	}
	if t := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc); startsDay(t, d) {
		return t, nil
	}
	// UTC offsets lie within -12h..+14h, so the day starts within 26h of
	// its UTC midnight on either side; local dates only move forward
	// there (a backward shift never crosses a whole day).
	lo, hi := d.Add(-26*time.Hour).Unix(), d.Add(26*time.Hour).Unix()
	for lo < hi {
		mid := lo + (hi-lo)/2
		if !localDate(time.Unix(mid, 0).In(loc)).Before(d) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return time.Unix(lo, 0).In(loc), nil
}

// startsDay says whether t is the first second of the day d in t's zone:
// its local date is d and the second before lies on an earlier date.
func startsDay(t, d time.Time) bool {
	return localDate(t).Equal(d) && localDate(t.Add(-time.Second)).Before(d)
}

// localDate is t's calendar date in its own zone, as a UTC midnight.
func localDate(t time.Time) time.Time {
	y, m, dd := t.Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
}

// ZoneDayStart is DayStart for a zone name: what an activity computes for a
// date the plan did not cover (a moved start, an extended end).
func ZoneDayStart(zone, date string) (time.Time, error) {
	loc, err := LoadZone(zone)
	if err != nil {
		return time.Time{}, err
	}
	return DayStart(date, loc)
}

// NextDay returns the calendar day after date (YYYY-MM-DD): access lasts
// through its end date and ends when the next day begins.
func NextDay(date string) (string, error) {
	d, err := time.Parse(dateLayout, date)
	if err != nil {
		return "", fmt.Errorf("%q is not a date in YYYY-MM-DD form", date)
	}
	return d.AddDate(0, 0, 1).Format(dateLayout), nil
}
