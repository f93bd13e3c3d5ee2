data "glbdns_member_health" "web_eu" {
  pool = "web-eu"
}

output "down" {
  value = [for m in data.glbdns_member_health.web_eu.members : m.name if m.status != "up"]
}
