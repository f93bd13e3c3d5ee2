# A geo service over the real GeoIP2 City test database (testdata/geoip at the repository root), for the geo
# answer benchmark and test.
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}

geoip {
  database = "../../testdata/geoip/GeoIP2-City-Test.mmdb"
}

pool "eu" {
  member "lon-1" {
    address = "192.0.2.1"
  }
  member "lon-2" {
    address = "192.0.2.2"
  }
}

pool "us" {
  member "nyc-1" {
    address = "198.51.100.1"
  }
}

service "geo.glb.test" {
  policy = "geo"
  pools  = ["eu", "us"]
  geo {
    rule {
      countries = ["GB"]
      pools     = ["eu", "us"]
    }
    default_pools = ["us", "eu"]
  }
}
