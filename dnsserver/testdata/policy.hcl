# Test policy for the dnsserver tests: one zone with static data of every kind the
# server handles, a delegation, wildcards, CNAME chains and four services.
zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com", "ns2.glb.example.com"]
  ttl         = 300
  soa {
    mname   = "ns1.glb.example.com"
    rname   = "hostmaster.example.com"
    serial  = 2026112501
    minimum = 60
  }
  record "ns1" {
    type = "A"
    values = ["192.0.2.53"]
  }
  record "ns2" {
    type = "A"
    values = ["192.0.2.54"]
  }
  record "static" {
    type = "A"
    values = ["192.0.2.1"]
  }
  record "static" {
    type = "AAAA"
    values = ["2001:db8::1"]
  }
  record "static" {
    type = "MX"
    values = ["10 mail.glb.example.com."]
  }
  record "static" {
    type = "TXT"
    values = ["\"hello world\""]
  }
  record "multi" {
    type = "A"
    values = ["192.0.2.61", "192.0.2.62", "192.0.2.63"]
  }
  record "multi" {
    type = "AAAA"
    values = ["2001:db8::61", "2001:db8::62"]
  }
  record "mail" {
    type = "A"
    values = ["192.0.2.25"]
  }
  record "*.wild" {
    type = "A"
    values = ["192.0.2.99"]
  }
  record "alias" {
    type = "CNAME"
    values = ["alias2.glb.example.com."]
  }
  record "alias2" {
    type = "CNAME"
    values = ["www.glb.example.com."]
  }
  record "out" {
    type = "CNAME"
    values = ["www.example.net."]
  }
  record "dangling" {
    type = "CNAME"
    values = ["nothere.glb.example.com."]
  }
  record "_sip._udp" {
    type   = "SRV"
    values = ["10 5 5060 sip.glb.example.com.", "20 5 5060 sip.example.net."]
  }
  record "sip" {
    type   = "AAAA"
    values = ["2001:db8::5060"]
  }
  record "manymx" {
    type   = "MX"
    values = ["10 mx1", "10 mx2", "10 mx3", "10 mx4", "10 mx5", "10 mx6", "10 mx7", "10 mx8"]
  }
  record "mx1" {
    type   = "AAAA"
    values = ["2001:db8::1:1", "2001:db8::1:2", "2001:db8::1:3"]
  }
  record "mx2" {
    type   = "AAAA"
    values = ["2001:db8::2:1", "2001:db8::2:2", "2001:db8::2:3"]
  }
  record "mx3" {
    type   = "AAAA"
    values = ["2001:db8::3:1", "2001:db8::3:2", "2001:db8::3:3"]
  }
  record "mx4" {
    type   = "AAAA"
    values = ["2001:db8::4:1", "2001:db8::4:2", "2001:db8::4:3"]
  }
  record "svcb" {
    type   = "HTTPS"
    values = ["1 . alpn=\"h2,h3\" ipv4hint=\"192.0.2.1\""]
  }
  record "_443._tcp.static" {
    type   = "TLSA"
    values = ["3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"]
  }
  record "sub" {
    type = "NS"
    values = ["ns.sub.glb.example.com."]
  }
  record "sub" {
    type   = "DS"
    values = ["12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"]
  }
  record "ns.sub" {
    type = "A"
    values = ["192.0.2.200"]
  }
  record "big" {
    type   = "TXT"
    values = [
      "chunk00-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk01-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk02-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk04-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk05-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk06-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk07-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk08-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk09-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk10-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "chunk11-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ]
  }
}

pool "web" {
  member "a" {
    address = "192.0.2.10"
    weight = 3
  }
  member "b" {
    address = "192.0.2.11"
    weight = 1
  }
}

pool "web6" {
  member "a6" { address = "2001:db8::10" }
  member "b6" { address = "2001:db8::11" }
}

pool "rr" {
  member "r1" { address = "198.51.100.1" }
  member "r2" { address = "198.51.100.2" }
  member "r3" { address = "198.51.100.3" }
}

pool "edge" {
  member "cdn" { host = "edge.cdn.example.net" }
}

pool "internal" {
  member "i" { host = "static.glb.example.com" }
}

service "www.glb.example.com" {
  policy = "weighted"
  pools  = ["web", "web6"]
  ttl    = 30
}

service "v4only.glb.example.com" {
  policy = "weighted"
  pools  = ["web"]
}

service "rr.glb.example.com" {
  policy = "round_robin"
  pools  = ["rr"]
  ttl    = 20
}

service "hash.glb.example.com" {
  policy         = "client_subnet_hash"
  pools          = ["rr"]
  hash_prefix_v4 = 24
}

service "cdn.glb.example.com" {
  pools = ["edge"]
}

service "inner.glb.example.com" {
  pools = ["internal"]
}
