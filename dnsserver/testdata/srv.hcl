# Policy for the SRV tests (srv_test.go): services whose members have ports, answered
# with SRV records (RFC 2782) and their targets' addresses.
zone "srv.example" {
  nameservers = ["ns.srv.example"]
  record "ns" {
    type   = "A"
    values = ["192.0.2.53"]
  }
}

pool "a" {
  port = 8080
  member "a1" {
    address = "192.0.2.1"
  }
  member "a2" {
    address = "192.0.2.2"
    weight  = 3
  }
  member "a3" {
    address = "2001:db8::3"
    weight  = 2
    port    = 9090
  }
  member "a0" {
    address = "192.0.2.9"
    weight  = 0
  }
}

pool "b" {
  port = 8081
  member "b1" { address = "192.0.2.11" }
  member "b2" { address = "192.0.2.12" }
}

pool "big" {
  port = 80
  member "m00" { address = "192.0.2.100" }
  member "m01" { address = "192.0.2.101" }
  member "m02" { address = "192.0.2.102" }
  member "m03" { address = "192.0.2.103" }
  member "m04" { address = "192.0.2.104" }
  member "m05" { address = "192.0.2.105" }
  member "m06" { address = "192.0.2.106" }
  member "m07" { address = "192.0.2.107" }
  member "m08" { address = "192.0.2.108" }
  member "m09" { address = "192.0.2.109" }
  member "m10" { address = "192.0.2.110" }
  member "m11" { address = "192.0.2.111" }
  member "m12" { address = "192.0.2.112" }
  member "m13" { address = "192.0.2.113" }
  member "m14" { address = "192.0.2.114" }
  member "m15" { address = "192.0.2.115" }
  member "m16" { address = "192.0.2.116" }
  member "m17" { address = "192.0.2.117" }
  member "m18" { address = "192.0.2.118" }
  member "m19" { address = "192.0.2.119" }
  member "m20" { address = "192.0.2.120" }
  member "m21" { address = "192.0.2.121" }
  member "m22" { address = "192.0.2.122" }
  member "m23" { address = "192.0.2.123" }
  member "m24" { address = "192.0.2.124" }
  member "m25" { address = "192.0.2.125" }
  member "m26" { address = "192.0.2.126" }
  member "m27" { address = "192.0.2.127" }
  member "m28" { address = "192.0.2.128" }
  member "m29" { address = "192.0.2.129" }
}

pool "mid" {
  port = 80
  member "m00" { address = "192.0.2.200" }
  member "m01" { address = "192.0.2.201" }
  member "m02" { address = "192.0.2.202" }
  member "m03" { address = "192.0.2.203" }
  member "m04" { address = "192.0.2.204" }
  member "m05" { address = "192.0.2.205" }
  member "m06" { address = "192.0.2.206" }
  member "m07" { address = "192.0.2.207" }
  member "m08" { address = "192.0.2.208" }
  member "m09" { address = "192.0.2.209" }
  member "m10" { address = "192.0.2.210" }
  member "m11" { address = "192.0.2.211" }
  member "m12" { address = "192.0.2.212" }
  member "m13" { address = "192.0.2.213" }
  member "m14" { address = "192.0.2.214" }
  member "m15" { address = "192.0.2.215" }
  member "m16" { address = "192.0.2.216" }
  member "m17" { address = "192.0.2.217" }
  member "m18" { address = "192.0.2.218" }
  member "m19" { address = "192.0.2.219" }
  member "m20" { address = "192.0.2.220" }
  member "m21" { address = "192.0.2.221" }
  member "m22" { address = "192.0.2.222" }
  member "m23" { address = "192.0.2.223" }
}

pool "edge" {
  member "eu" {
    host = "eu.cdn.example.net"
    port = 443
  }
}

pool "noport" {
  member "n1" { address = "192.0.2.31" }
}

service "_http._tcp.plain.srv.example" {
  policy  = "weighted"
  pools   = ["a"]
  answers = 0
}

service "fo.srv.example" {
  policy  = "failover"
  pools   = ["a", "b"]
  answers = 0
}

service "one.srv.example" {
  policy = "failover"
  pools  = ["b", "a"]
}

service "down.srv.example" {
  policy        = "failover"
  pools         = ["b"]
  when_all_down = "servfail"
}

service "all.srv.example" {
  pools   = ["big"]
  answers = 0
}

service "mid.srv.example" {
  pools   = ["mid"]
  answers = 0
}

service "hw.srv.example" {
  policy  = "client_subnet_hash"
  pools   = ["a"]
  answers = 2
}

service "cdn.srv.example" {
  pools = ["edge"]
}

service "noport.srv.example" {
  pools = ["noport"]
}
