# A complete example: one pool with two members and an HTTP check, a weighted service in
# zone glb.example.com (the zone itself is defined in the node's policy files), and a drain.
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

resource "glbdns_pool" "web_eu" {
  name   = "web-eu"
  region = "eu"
  members = [
    { name = "fra-1", address = "192.0.2.10", weight = 3 },
    { name = "ams-1", address = "192.0.2.11", weight = 1 },
  ]
  checks = [
    { name = "http", port = 8080, path = "/healthz", interval = "2s", timeout = "1s", rise = 2, fall = 2 },
  ]
}

resource "glbdns_service" "www" {
  name    = "www.glb.example.com"
  policy  = "weighted"
  pools   = [glbdns_pool.web_eu.name]
  ttl     = 30
  answers = 1
}

resource "glbdns_member_drain" "fra_1" {
  pool     = glbdns_pool.web_eu.name
  member   = "fra-1"
  duration = "2h"
  reason   = "kernel upgrade"
}

data "glbdns_member_health" "web_eu" {
  pool = glbdns_pool.web_eu.name
}

output "web_eu_members_up" {
  value = data.glbdns_member_health.web_eu.up
}
