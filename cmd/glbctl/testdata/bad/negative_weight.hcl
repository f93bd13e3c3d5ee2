# want: line 9: weight
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}

pool "web" {
  member "a" {
    address = "192.0.2.1"
    weight  = -1
  }
}
