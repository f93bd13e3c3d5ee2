package geoip

import "math"

// earthRadiusKm is the mean Earth radius (IUGG R1 = 6371.0088 km). Using a sphere errs by
// up to about 0.5% against the WGS 84 ellipsoid, far less than GeoIP location accuracy.
const earthRadiusKm = 6371.0088

// Distance returns the great-circle distance in kilometres between two points given in
// degrees, by the haversine formula, which stays accurate for small distances where the
// spherical law of cosines loses precision.
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	dφ, dλ := (lat2-lat1)*rad, (lon2-lon1)*rad
	s1, s2 := math.Sin(dφ/2), math.Sin(dλ/2)
	h := s1*s1 + math.Cos(φ1)*math.Cos(φ2)*s2*s2
	// Rounding can push h a hair above 1 for antipodal points; Asin would return NaN.
	h = min(h, 1)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(h))
}
