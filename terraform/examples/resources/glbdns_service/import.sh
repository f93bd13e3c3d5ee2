terraform import glbdns_service.www www.glb.example.com
