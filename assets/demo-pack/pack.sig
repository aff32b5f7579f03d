format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "89ced2930638265f"
signature = "14574e334f9a2bd74377d9b74ca3fd482eee51c03026e3be05a33006acd88a6783017a3cc5363e80568fecd92e973564914c31e54e8c1557e2f85610efecf70a"
