# Policy for the least_connections tests and benchmark: one pool of four members with a
# load signal, answered one or two at a time.
zone "lc.example" {
  nameservers = ["ns.lc.example"]
  record "ns" {
    type   = "A"
    values = ["192.0.2.53"]
  }
}

pool "web" {
  member "w0" {
    address = "192.0.2.10"
  }
  member "w1" {
    address = "192.0.2.11"
  }
  member "w2" {
    address = "192.0.2.12"
    weight  = 2
  }
  member "w3" {
    address = "192.0.2.13"
  }
  check "http" {
    port = 8080
    path = "/healthz"
  }
  load {
    metric = "active_connections"
  }
}

service "www.lc.example" {
  policy = "least_connections"
  pools  = ["web"]
}

service "two.lc.example" {
  policy  = "least_connections"
  pools   = ["web"]
  answers = 2
}
