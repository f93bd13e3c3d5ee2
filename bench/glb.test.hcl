# The comparison zone of /work/shared/bench (README.md, "The comparison zone"): what
# glbdns serves when it is measured beside Knot, NSD, gdnsd, PowerDNS and CoreDNS.
#
#   www.glb.test    A 192.0.2.1 (static); AAAA is NODATA
#   pool.glb.test   1 A by weight 40/30/20/10 over 192.0.2.11-14 (gdnsd "weighted")
#   pool2.glb.test  all 4 A, rotated (round robin; gdnsd "multifo")
#   geo.glb.test    1 A by client subnet hash, keyed on ECS, scope /24
#   nx.glb.test     NXDOMAIN
#
# The SOA, NS and TTLs are those of the peers' zone (lib.sh zone_head).
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  ttl         = 60
  soa {
    mname   = "ns1.glb.test"
    rname   = "hostmaster.glb.test"
    serial  = 1
    refresh = 3600
    retry   = 600
    expire  = 86400
    minimum = 60
  }
  record "ns1" {
    type   = "A"
    values = ["127.0.0.1"]
  }
  record "www" {
    type   = "A"
    values = ["192.0.2.1"]
  }
}

pool "backends" {
  member "b0" {
    address = "192.0.2.11"
    weight  = 40
  }
  member "b1" {
    address = "192.0.2.12"
    weight  = 30
  }
  member "b2" {
    address = "192.0.2.13"
    weight  = 20
  }
  member "b3" {
    address = "192.0.2.14"
    weight  = 10
  }
}

service "pool.glb.test" {
  policy  = "weighted"
  pools   = ["backends"]
  ttl     = 60
  answers = 1
}

service "pool2.glb.test" {
  policy  = "round_robin"
  pools   = ["backends"]
  ttl     = 60
  answers = 4
}

service "geo.glb.test" {
  policy         = "client_subnet_hash"
  pools          = ["backends"]
  ttl            = 60
  answers        = 1
  hash_prefix_v4 = 24
}
