format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "fe98390bade98cd3"
signature = "91f485f5f23bc74182ddbb71c96b971774223bc6b3474858f5b5dd511a29d10641c3a0bc60fc35f1b431722c801b224778a8fc57da587a455ee71e7766c9ce0a"
