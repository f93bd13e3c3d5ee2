# want: line 7: nope
zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}

service "www.glb.test" {
  pools = ["nope"]
}
