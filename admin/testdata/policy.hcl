# Operator policy for the admin API tests: one zone, and one pool and one service that the
# API must show read-only.
zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com"]
  record "ns1" {
    type   = "A"
    values = ["192.0.2.53"]
  }
}

pool "op-web" {
  region = "eu"
  member "fra-1" {
    address = "192.0.2.10"
    weight  = 3
  }
  member "ams-1" {
    address = "192.0.2.11"
  }
  check "http" {
    port     = 8080
    path     = "/healthz"
    interval = "2s"
    timeout  = "1s"
  }
}

service "op.glb.example.com" {
  policy = "weighted"
  pools  = ["op-web"]
}
