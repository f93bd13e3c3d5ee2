# Failover between two pools: eu answers while at least two of its three members are
# usable (up, weight above 0, not drained); below that, us answers. A pool's location,
# bias and method serve steering services too (nearest orders pools by distance).
terraform {
  required_providers {
    glbdns = {
      source = "glbdns/glbdns"
    }
  }
}

provider "glbdns" {
  endpoint = "http://127.0.0.1:8053" # or GLBDNS_ENDPOINT
  # token comes from GLBDNS_ADMIN_TOKEN
}

resource "glbdns_pool" "eu" {
  name        = "app-eu"
  location    = [50.1109, 8.6821] # Frankfurt, [latitude, longitude]
  min_healthy = 2                 # or a percentage: "67%"
  method      = "weighted"        # inside this pool; default: the service's method
  members = [
    { name = "fra-1", address = "192.0.2.21", weight = 2 },
    { name = "fra-2", address = "192.0.2.22" },
    { name = "ams-1", address = "192.0.2.23" },
  ]
  checks = [{ name = "http", port = 8080, path = "/healthz" }]
}

resource "glbdns_pool" "us" {
  name     = "app-us"
  location = [39.0438, -77.4874] # Ashburn
  bias     = -100                # km: a nearest service would shed clients from it
  members = [
    { name = "iad-1", address = "198.51.100.21" },
    { name = "iad-2", address = "198.51.100.22" },
  ]
  checks = [{ name = "http", port = 8080, path = "/healthz" }]
}

resource "glbdns_service" "app" {
  name          = "app.glb.example.com"
  policy        = "failover"
  pools         = [glbdns_pool.eu.name, glbdns_pool.us.name] # tried in this order
  method        = "round_robin"                              # members inside pools without their own method
  answers       = 2
  when_all_down = "all"
}
