# want: line 10: timeout
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}

pool "web" {
  member "a" { address = "192.0.2.1" }
  check "http" {
    interval = "1s"
    timeout  = "2s"
  }
}
