format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "03574e4091a1cbe2"
signature = "af57f3eac2434625995458f5b22d8e4e7541cb6b9b594472c4fa7a651283602c4203c1594a364751340a1142ba51bebb00ae2b57eb0c58de70cab1462d84ef04"
