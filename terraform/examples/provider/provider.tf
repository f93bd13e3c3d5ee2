provider "glbdns" {
  endpoint = "http://127.0.0.1:8053" # or GLBDNS_ENDPOINT
  token    = var.glbdns_admin_token  # or GLBDNS_ADMIN_TOKEN
}

variable "glbdns_admin_token" {
  type      = string
  sensitive = true
}
