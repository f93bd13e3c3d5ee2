terraform import glbdns_pool.web_eu web-eu
