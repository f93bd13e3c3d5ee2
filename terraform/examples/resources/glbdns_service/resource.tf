resource "glbdns_service" "www" {
  name          = "www.glb.example.com"
  policy        = "weighted"
  pools         = [glbdns_pool.web_eu.name, glbdns_pool.web_us.name]
  ttl           = 30
  answers       = 1
  when_all_down = "fallback"
  fallback      = glbdns_pool.web_us.name
}

resource "glbdns_service" "api" {
  name           = "api.glb.example.com"
  policy         = "client_subnet_hash"
  pools          = [glbdns_pool.web_eu.name]
  hash_prefix_v4 = 24
  hash_prefix_v6 = 56
}

# Steering: the first pool of the order that is up (min_healthy) answers.
resource "glbdns_service" "app" {
  name   = "app.glb.example.com"
  policy = "failover" # or "nearest" (needs a geoip block in the operator's policy)
  pools  = [glbdns_pool.web_eu.name, glbdns_pool.web_us.name]
  method = "round_robin" # members inside pools without their own method
}

# Geo: the first rule the client matches (networks > asns > countries > continents) gives
# the pool order; default_pools for the others.
resource "glbdns_service" "geo" {
  name   = "geo.glb.example.com"
  policy = "geo"
  pools  = [glbdns_pool.web_eu.name, glbdns_pool.web_us.name]
  geo = {
    rules = [
      { networks = ["198.51.100.0/24"], pools = [glbdns_pool.web_us.name] },
      { countries = ["GB", "DE", "FR"], continents = ["EU"], pools = [glbdns_pool.web_eu.name, glbdns_pool.web_us.name] },
    ]
    default_pools = [glbdns_pool.web_us.name, glbdns_pool.web_eu.name]
  }
}

# Every pool a least_connections service balances needs a load attribute.
resource "glbdns_service" "lc" {
  name   = "lc.glb.example.com"
  policy = "least_connections"
  pools  = [glbdns_pool.app.name]
}
