# want: line 8: colour
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}

pool "web" {
  member "a" { address = "192.0.2.1" }
  colour = "blue"
}
