data "glbdns_pool" "from_files" {
  name = "legacy" # a pool from the operator's policy files (read-only)
}

output "legacy_members" {
  value = [for m in data.glbdns_pool.from_files.members : m.name]
}
