# want: line 8: "a"
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}

pool "web" {
  member "a" { address = "192.0.2.1" }
  member "a" { address = "192.0.2.2" }
}
