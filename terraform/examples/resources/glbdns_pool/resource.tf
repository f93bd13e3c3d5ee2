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

# The steering attributes serve failover, geo and nearest services.
resource "glbdns_pool" "web_us" {
  name        = "web-us"
  location    = [39.0438, -77.4874] # [latitude, longitude] in degrees
  bias        = 200                 # km: a nearest service prefers this pool by 200 km
  method      = "weighted"          # members inside this pool; default: the service's method
  min_healthy = "50%"               # or a number of members: 2
  members = [
    { name = "iad-1", address = "198.51.100.10", weight = 2 },
    { name = "iad-2", address = "198.51.100.11" },
  ]
}

# least_connections balances on the members' active connections, which healthd reads as
# the load attribute says: here the Prometheus metric on each member's check port.
resource "glbdns_pool" "app" {
  name = "app"
  members = [
    { name = "app-1", address = "192.0.2.70" },
    { name = "app-2", address = "192.0.2.71", weight = 2 },
  ]
  checks = [{ name = "http", port = 8080, path = "/healthz" }]
  load = {
    metric = "active_connections"   # type "prometheus" (default); path "/metrics", port 8080
    labels = { listener = "public" } # optional label matchers
  }
}
