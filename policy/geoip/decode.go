package geoip

import (
	"fmt"

	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// Upper bounds for decoded strings. A two-letter code longer than maxCodeLen means the
// record is not what we think it is; maxOrgLen is geoip2-golang's own bound for the AS
// organisation. Bounding them keeps a hostile database from making a lookup allocate much.
const (
	maxCodeLen = 16
	maxOrgLen  = 4096
)

// cityRecord is the part of a City or Country record that steering uses. It decodes itself
// from a cursor in one pass over the record's maps, reading four keys, skipping others
// without decoding them, and stopping as soon as it has what it needs. Stopping early leaves
// the rest of the record unvalidated, which is safe only because Open verified the whole
// data section; for the same reason these are not mmdbdata.CursorUnmarshalers (which must
// consume the whole value) and are called directly, never through Result.Decode.
type cityRecord struct {
	country, registeredCountry, continent string
	lat, lon                              float64
	hasLat, hasLon                        bool
}

// decode reads the record at c.
func (r *cityRecord) decode(c mmdbdata.Cursor) error {
	m, err := c.MapReader()
	if err != nil {
		return err
	}
	// Keys seen; the record is complete once country (or, failing it, registered_country),
	// continent and location are. Country databases have no location: they end the loop by
	// running out of keys.
	const country, registered, continent, location = 1, 2, 4, 8
	var seen uint8
	next := m.First()
	for range m.Len() {
		key, val, err := next.ReadMapKey()
		if err != nil {
			return err
		}
		switch string(key) {
		case "country":
			next, err = readStringField(val, "iso_code", &r.country)
			seen |= country
		case "registered_country":
			next, err = readStringField(val, "iso_code", &r.registeredCountry)
			seen |= registered
		case "continent":
			next, err = readStringField(val, "code", &r.continent)
			seen |= continent
		case "location":
			next, err = r.readLocation(val)
			seen |= location
		default:
			next, err = val.Skip()
		}
		if err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		if seen&(continent|location) == continent|location && (r.country != "" || seen&registered != 0) {
			break
		}
	}
	return nil
}

// readLocation reads latitude and longitude from the "location" map, noting whether each
// was present: (0, 0) is a real place in the Gulf of Guinea, so presence cannot be
// inferred from the values. Like readStringField it stops once it has both.
func (r *cityRecord) readLocation(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	m, err := c.MapReader()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	next := m.First()
	for range m.Len() {
		key, val, err := next.ReadMapKey()
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		switch string(key) {
		case "latitude":
			r.lat, next, err = val.ReadFloat()
			r.hasLat = err == nil
		case "longitude":
			r.lon, next, err = val.ReadFloat()
			r.hasLon = err == nil
		default:
			next, err = val.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		if r.hasLat && r.hasLon {
			break
		}
	}
	return c.Skip()
}

// readStringField reads the string under want from the map at c (for example iso_code from
// a country record) into *dst, stopping at it, and returns the cursor after the map. That
// cursor comes from c.Skip, which for the usual case of a record shared through a pointer
// only steps over the pointer, instead of from walking the rest of the map.
func readStringField(c mmdbdata.Cursor, want string, dst *string) (mmdbdata.Cursor, error) {
	m, err := c.MapReader()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	next := m.First()
	for range m.Len() {
		key, val, err := next.ReadMapKey()
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		if string(key) == want {
			if *dst, _, err = val.ReadStringMaxSize(maxCodeLen); err != nil {
				return mmdbdata.Cursor{}, err
			}
			break
		}
		if next, err = val.Skip(); err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return c.Skip()
}

// asnRecord is an ASN (or ISP) database record, decoded like cityRecord.
type asnRecord struct {
	number uint32
	org    string
}

// decode reads the record at c. ASN records are small; it reads all of it.
func (r *asnRecord) decode(c mmdbdata.Cursor) error {
	m, err := c.MapReader()
	if err != nil {
		return err
	}
	next := m.First()
	for range m.Len() {
		key, val, err := next.ReadMapKey()
		if err != nil {
			return err
		}
		switch string(key) {
		case "autonomous_system_number":
			var n uint64
			n, next, err = val.ReadUint()
			if err == nil && n > 1<<32-1 {
				// RFC 6793 Section 2: AS numbers are 32 bits.
				err = mmdbdata.NewInvalidDatabaseError("autonomous_system_number %d exceeds 32 bits", n)
			}
			r.number = uint32(n)
		case "autonomous_system_organization":
			r.org, next, err = val.ReadStringMaxSize(maxOrgLen)
		default:
			next, err = val.Skip()
		}
		if err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
	}
	return nil
}
