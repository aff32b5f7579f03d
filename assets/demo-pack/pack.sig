format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "f8fcabefbe64bfba"
signature = "2217822c9d036749b6b2a2fed7a226388a9086e22487045982b9ac0effd76393062785b8d58a626de30823aca1f388eacaf7f01761dc18779141febbc7181709"
