# bench/signed.hcl: the signed zone of bench/signed.sh and bench/zonemaster.sh. Its keys
# are made for each run in the folder "keys" beside it; the name servers are the
# addresses zonemaster.sh serves it on.
zone "glb.test" {
  nameservers = ["ns1.glb.test", "ns2.glb.test"]
  dnssec {
    keys = "keys"
  }
  soa {
    rname   = "hostmaster.glb.test."
    refresh = 14400
    retry   = 3600
    expire  = 1209600
    minimum = 300
  }
  record "ns1" {
    type   = "A"
    values = ["127.0.0.2"]
  }
  record "ns2" {
    type   = "A"
    values = ["127.0.0.3"]
  }
  record "static" {
    type   = "A"
    values = ["192.0.2.10"]
  }
  record "*.wild" {
    type   = "A"
    values = ["192.0.2.77"]
  }
}
pool "p" {
  member "a" {
    address = "192.0.2.1"
  }
  member "b" {
    address = "192.0.2.2"
  }
}
service "web.glb.test" {
  policy = "weighted"
  pools  = ["p"]
}
