format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "21d0d99399765338"
signature = "a4455bfb936b66b2f11927b937c618d20675bd597f518f122a3bdf3d5189dd107d0279aec639bb5efb0c538ce8283d388eaa42bd93817e7a32115f5b6f611201"
