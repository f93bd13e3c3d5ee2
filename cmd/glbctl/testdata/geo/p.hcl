zone "glb.test" {
  nameservers = ["ns1.glb.test"]
}
geoip {
  database = "../../../../testdata/geoip/GeoIP2-City-Test.mmdb"
}
pool "eu" {
  member "a" {
    address = "192.0.2.1"
  }
}
pool "us" {
  member "b" {
    address = "192.0.2.2"
  }
}
service "app.glb.test" {
  policy = "geo"
  pools  = ["eu", "us"]
  geo {
    rule {
      countries = ["GB"]
      pools     = ["eu", "us"]
    }
    default_pools = ["us", "eu"]
  }
}
