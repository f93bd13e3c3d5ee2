# Policy for the fast-path byte-identity tests: shapes the main test policy lacks. A
# nested zone (whose SOA names share suffixes with the parent), SOA names that compress
# against each other, an RRset of several A and AAAA records, a round-robin service
# answering 3 of 4 members of both families, and a service whose pool the test's health
# view marks down with when_all_down = "servfail". The zones tm, ap and sh.example have
# SOAs the negative-answer template writes (tm, ap) or leaves to the compressor (sh).
zone "fp.example" {
  nameservers = ["ns.fp.example"]
  ttl         = 120
  soa {
    mname   = "ns.fp.example"
    rname   = "ns.fp.example"
    serial  = 7
    minimum = 30
  }
  record "ns" {
    type   = "A"
    values = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
  }
  record "ns" {
    type   = "AAAA"
    values = ["2001:db8::1", "2001:db8::2"]
  }
  record "a.b.c" {
    type   = "A"
    values = ["192.0.2.9"]
  }
}

zone "sub.fp.example" {
  nameservers = ["ns.fp.example"]
  soa {
    mname   = "ns.fp.example"
    rname   = "hostmaster.sub.fp.example"
    serial  = 9
    minimum = 45
  }
  record "www" {
    type   = "A"
    values = ["192.0.2.80"]
  }
}

zone "tm.example" {
  nameservers = ["ns1.tm.example"]
  soa {
    mname   = "ns1.tm.example"
    rname   = "hostmaster.tm.example"
    serial  = 11
    minimum = 20
  }
  record "ns1" {
    type   = "A"
    values = ["192.0.2.90"]
  }
}

zone "ap.example" {
  nameservers = ["ns.tm.example"]
  soa {
    mname   = "ap.example"
    rname   = "x.y.ap.example"
    serial  = 12
  }
  record "www" {
    type   = "A"
    values = ["192.0.2.91"]
  }
}

zone "sh.example" {
  nameservers = ["ns.tm.example"]
  soa {
    mname   = "a.b.sh.example"
    rname   = "c.b.sh.example"
    serial  = 13
  }
}

pool "dual" {
  member "v4a" { address = "192.0.2.21" }
  member "v4b" { address = "192.0.2.22" }
  member "v4c" { address = "192.0.2.23" }
  member "v4d" { address = "192.0.2.24" }
  member "v6a" { address = "2001:db8::21" }
  member "v6b" { address = "2001:db8::22" }
}

pool "dead" {
  member "d1" { address = "192.0.2.31" }
  member "d2" { address = "2001:db8::31" }
}

service "rr3.fp.example" {
  policy  = "round_robin"
  pools   = ["dual"]
  answers = 3
  ttl     = 15
}

service "h.sub.fp.example" {
  policy         = "client_subnet_hash"
  pools          = ["dual"]
  answers        = 2
  hash_prefix_v4 = 20
  hash_prefix_v6 = 48
}

service "down.fp.example" {
  policy        = "round_robin"
  pools         = ["dead"]
  when_all_down = "servfail"
}
