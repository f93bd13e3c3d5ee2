# want: line 8: CNAME
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
  record "www" {
    type = "A"
    values = ["192.0.2.1"]
  }
  record "www" {
    type = "CNAME"
    values = ["other.example.org."]
  }
}
