# Policy for the fast-path tests of steering services (failover, geo, nearest) over the
# real GeoIP2 City and GeoLite2 ASN test databases (testdata/geoip at the repository root). Every service
# answers deterministically (round_robin or client_subnet_hash, never weighted) so that
# the fast and general paths can be compared byte for byte; the tests' health views take
# pools down to make the pool order spill and to reach each when_all_down mode.
zone "steer.test" {
  nameservers = ["ns.steer.test"]
  soa {
    mname   = "ns.steer.test"
    rname   = "hostmaster.steer.test"
    serial  = 3
    minimum = 40
  }
  record "ns" {
    type   = "A"
    values = ["192.0.2.53"]
  }
}

geoip {
  database     = "../../testdata/geoip/GeoIP2-City-Test.mmdb"
  asn_database = "../../testdata/geoip/GeoLite2-ASN-Test.mmdb"
}

pool "eu" {
  location = [51.5074, -0.1278] # London
  member "lon-1" { address = "192.0.2.1" }
  member "lon-2" { address = "192.0.2.2" }
  member "lon-6" { address = "2001:db8:e::1" }
}

pool "us" {
  location = [40.7128, -74.006] # New York
  member "nyc-1" { address = "198.51.100.1" }
  member "nyc-2" { address = "198.51.100.2" }
  member "nyc-6" { address = "2001:db8:a::1" }
  member "nyc-7" { address = "2001:db8:a::2" }
}

pool "nybias" {
  location = [40.7128, -74.006]
  bias     = 6000
  member "nyc-9" { address = "198.51.100.9" }
  member "nyc-96" { address = "2001:db8:a::9" }
}

pool "asia" {
  location = [35.6762, 139.6503] # Tokyo
  member "tyo-1" { address = "203.0.113.1" }
  member "tyo-2" { address = "203.0.113.2" }
}

pool "asia2" {
  member "sin-1" { address = "203.0.113.11" }
}

pool "quorum" {
  min_healthy = 2
  member "q1" { address = "192.0.2.11" }
  member "q2" { address = "192.0.2.12" }
  member "q3" { address = "192.0.2.13" }
  member "q6" { address = "2001:db8:c::1" }
}

pool "hashed" {
  location = [50.1109, 8.6821] # Frankfurt
  method   = "client_subnet_hash"
  member "x1" { address = "192.0.2.31" }
  member "x2" { address = "192.0.2.32" }
  member "x3" { address = "192.0.2.33" }
  member "x6a" { address = "2001:db8:d::1" }
  member "x6b" { address = "2001:db8:d::2" }
}

pool "backup" {
  member "b1" { address = "192.0.2.99" }
  member "b6" { address = "2001:db8:b::1" }
}

service "fo.steer.test" {
  policy = "failover"
  pools  = ["eu", "us"]
  ttl    = 20
}

service "fo-quorum.steer.test" {
  policy  = "failover"
  pools   = ["quorum", "us"]
  answers = 2
}

service "fo-hash.steer.test" {
  policy         = "failover"
  pools          = ["hashed", "backup"]
  hash_prefix_v4 = 20
  hash_prefix_v6 = 40
}

service "fo-sf.steer.test" {
  policy        = "failover"
  pools         = ["eu", "us"]
  when_all_down = "servfail"
}

service "fo-fb.steer.test" {
  policy        = "failover"
  pools         = ["eu", "us"]
  when_all_down = "fallback"
  fallback      = "backup"
}

service "geo.steer.test" {
  policy = "geo"
  pools  = ["eu", "us", "asia", "hashed"]
  geo {
    rule {
      networks = ["81.2.69.160/27", "10.1.0.0/16", "2001:218:1::/48"]
      pools    = ["us", "eu"]
    }
    rule {
      asns  = [29518]
      pools = ["asia", "eu"]
    }
    rule {
      countries = ["GB", "DE"]
      pools     = ["eu", "us", "asia"]
    }
    rule {
      countries = ["SE"]
      pools     = ["hashed", "eu"]
    }
    rule {
      continents = ["NA"]
      pools      = ["us", "eu"]
    }
    rule {
      continents = ["AS"]
      pools      = ["asia", "us"]
    }
    default_pools = ["us", "asia"]
  }
}

service "geo-sf.steer.test" {
  policy        = "geo"
  pools         = ["eu", "us"]
  when_all_down = "servfail"
  geo {
    rule {
      countries = ["GB"]
      pools     = ["eu", "us"]
    }
    default_pools = ["us", "eu"]
  }
}

service "geo-fb.steer.test" {
  policy        = "geo"
  pools         = ["eu", "us"]
  answers       = 2
  when_all_down = "fallback"
  fallback      = "backup"
  geo {
    rule {
      continents = ["EU"]
      pools      = ["eu", "us"]
    }
    default_pools = ["us", "eu"]
  }
}

service "geo-hash.steer.test" {
  policy         = "geo"
  pools          = ["hashed", "us"]
  answers        = 2
  hash_prefix_v4 = 22
  geo {
    rule {
      countries = ["GB", "DE"]
      pools     = ["hashed", "us"]
    }
    default_pools = ["us", "hashed"]
  }
}

# IPv4 members only: AAAA is NODATA.
service "geo4.steer.test" {
  policy = "geo"
  pools  = ["asia", "asia2"]
  geo {
    rule {
      countries = ["CN"]
      pools     = ["asia2", "asia"]
    }
  }
}

service "near.steer.test" {
  policy = "nearest"
  pools  = ["asia", "us", "eu"]
}

service "near-bias.steer.test" {
  policy = "nearest"
  pools  = ["eu", "nybias", "asia2"]
}

service "near-sf.steer.test" {
  policy        = "nearest"
  pools         = ["eu", "us"]
  when_all_down = "servfail"
}

service "near-fb.steer.test" {
  policy        = "nearest"
  pools         = ["eu", "us", "hashed"]
  when_all_down = "fallback"
  fallback      = "backup"
}

service "near-hash.steer.test" {
  policy  = "nearest"
  pools   = ["hashed", "us"]
  method  = "client_subnet_hash"
  answers = 2
}
