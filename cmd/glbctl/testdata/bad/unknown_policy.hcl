# want: line 11: fastest
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  member "a" { address = "192.0.2.1" }
}

service "www.glb.test" {
  pools  = ["web"]
  policy = "fastest"
}
