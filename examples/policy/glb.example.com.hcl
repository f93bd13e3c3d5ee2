# The example policy that `make run` serves on 127.0.0.1:5353.
#
# Members are loopback addresses (127.0.0.11 ...) so that the demo HTTP backends started by
# `make run` can listen on them and healthd can check them; in production they are your
# backends' public addresses.

zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com", "ns2.glb.example.com"]
  soa {
    rname   = "hostmaster.glb.example.com"
    serial  = 2026112501
    minimum = 60
  }
  record "ns1" {
    type = "A"
    values = ["192.0.2.53"]
  }
  record "ns2" {
    type = "A"
    values = ["198.51.100.53"]
  }
  record "@"   {
    type = "TXT"
    values = ["\"glbdns example zone\""]
  }
  record "docs" {
    type = "CNAME"
    values = ["www.glb.example.com."]
  }
  file = "glb.example.com.zone"
}

# Two regions of web servers; fra-1 takes three times the traffic of ams-1.
pool "web-eu" {
  region = "eu"
  member "fra-1" {
    address = "127.0.0.11"
    weight  = 3
  }
  member "ams-1" {
    address = "127.0.0.12"
    weight  = 1
  }
  check "http" {
    port     = 8080
    path     = "/healthz"
    interval = "1s"
    timeout  = "500ms"
    rise     = 2
    fall     = 2
  }
  # The backend's open connections, read every check interval (1s) from its /metrics on
  # the check's port: what the least-connections service below balances on.
  load {
    type   = "prometheus"
    metric = "demo_active_connections"
  }
}

pool "web-us" {
  region = "us"
  member "iad-1" {
    address = "127.0.0.13"
  }
  member "iad-v6" {
    address = "::1"
  }
  check "http" {
    port     = 8080
    path     = "/healthz"
    interval = "1s"
    timeout  = "500ms"
    rise     = 2
    fall     = 2
  }
  # The backend's open connections, read every check interval (1s) from its /metrics on
  # the check's port: what the least-connections service below balances on.
  load {
    type   = "prometheus"
    metric = "demo_active_connections"
  }
}

# A serverless endpoint: answered as a CNAME.
pool "edge" {
  member "cdn" {
    host = "edge.cdn.example.net"
  }
}

service "www.glb.example.com" {
  policy  = "weighted"
  pools   = ["web-eu", "web-us"]
  ttl     = 30
  answers = 1
}

service "rr.glb.example.com" {
  policy  = "round_robin"
  pools   = ["web-eu", "web-us"]
  answers = 2
}

# Least connections: answers in proportion to each member's spare capacity (fewest open
# connections per unit of weight), from the load the pools' load blocks read.
service "lc.glb.example.com" {
  policy = "least_connections"
  pools  = ["web-eu", "web-us"]
  ttl    = 10
}

# Geo: clients in Europe get the EU pool (the US one if it is down), clients in North
# America the US pool, others the EU pool first. The client is the EDNS Client Subnet
# address when the query has one (dig +subnet=...). The database is MaxMind's GeoIP2 City
# *test* database committed in testdata/geoip (a few networks only: 81.2.69.142 is in GB,
# 216.160.83.56 in the US); in production, name your GeoLite2 or GeoIP2 City database.
geoip {
  database = "../../testdata/geoip/GeoIP2-City-Test.mmdb"
}

service "geo.glb.example.com" {
  policy = "geo"
  method = "weighted"
  pools  = ["web-eu", "web-us"]
  geo {
    rule {
      continents = ["EU"]
      pools      = ["web-eu", "web-us"]
    }
    rule {
      continents = ["NA"]
      pools      = ["web-us", "web-eu"]
    }
    default_pools = ["web-eu", "web-us"]
  }
}

service "sticky.glb.example.com" {
  policy         = "client_subnet_hash"
  pools          = ["web-eu", "web-us"]
  hash_prefix_v4 = 24
}

service "static.glb.example.com" {
  pools = ["edge"]
}
