# want: line 7: 192.0.2.300
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}

pool "web" {
  member "a" { address = "192.0.2.300" }
}
