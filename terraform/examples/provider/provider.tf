provider "glbdns" {
  # The admin listeners of the nodes of one cluster, tried in this order (or
  # GLBDNS_ENDPOINTS, comma-separated). For a single node: endpoint = "http://127.0.0.1:8053"
  # (or GLBDNS_ENDPOINT).
  endpoints = ["http://127.0.0.1:8053", "http://127.0.0.1:8054"]
  token     = var.glbdns_admin_token # or GLBDNS_ADMIN_TOKEN
}

variable "glbdns_admin_token" {
  type      = string
  sensitive = true
}
