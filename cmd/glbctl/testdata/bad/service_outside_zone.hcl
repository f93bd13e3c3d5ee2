# want: line 9: www.example.org
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  member "a" { address = "192.0.2.1" }
}

service "www.example.org" { pools = ["web"] }
