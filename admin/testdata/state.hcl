# Policy for the status tests (/v1/state and the status page): a weighted service over two
# members (the test takes web/b down) and a round-robin service over three.
zone "glb.example.com" {
  nameservers = ["ns1.glb.example.com"]
}

pool "web" {
  member "a" {
    address = "192.0.2.10"
    weight  = 3
  }
  member "b" {
    address = "192.0.2.11"
  }
}

pool "rr" {
  member "r1" { address = "198.51.100.1" }
  member "r2" { address = "198.51.100.2" }
  member "r3" { address = "198.51.100.3" }
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

# spare/y is never reported (unknown), spare/z has weight 0 (disabled).
pool "spare" {
  member "y" { address = "203.0.113.1" }
  member "z" {
    address = "203.0.113.2"
    weight  = 0
  }
}

service "spare.glb.example.com" {
  policy = "weighted"
  pools  = ["spare"]
}
