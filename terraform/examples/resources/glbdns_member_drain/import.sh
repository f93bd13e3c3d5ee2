# POOL/MEMBER
terraform import glbdns_member_drain.fra_1 web-eu/fra-1
