# want: line 4: www.example.org
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  record "www.example.org." {
    type = "A"
    values = ["192.0.2.1"]
  }
}
