# want: line 9: "web"
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
pool "web" {
  member "a" { address = "192.0.2.1" }
}

pool "web" {
  member "b" { address = "192.0.2.2" }
}
