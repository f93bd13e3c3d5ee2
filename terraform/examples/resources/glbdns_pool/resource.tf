resource "glbdns_pool" "web_eu" {
  name   = "web-eu"
  region = "eu"
  members = [
    { name = "fra-1", address = "192.0.2.10", weight = 3 },
    { name = "ams-1", address = "2001:db8::11" },
  ]
  checks = [
    { name = "http", port = 8080, path = "/healthz", interval = "2s", timeout = "1s", expect_status = ["200-299"] },
    { name = "tls", type = "tcp", port = 443 },
  ]
}

# A pool of host names is answered with CNAME records.
resource "glbdns_pool" "edge" {
  name    = "edge"
  members = [{ name = "cdn", host = "eu.cdn.example.net" }]
}
