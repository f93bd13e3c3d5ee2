resource "glbdns_member_drain" "fra_1" {
  pool     = glbdns_pool.web_eu.name
  member   = "fra-1"
  duration = "2h"
  reason   = "kernel upgrade"
}
