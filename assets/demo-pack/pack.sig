format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "2d49c93d6990cf74"
signature = "3ed2d0c9d2f0b003ca52dc6e65a5dfa491f2a90fd4cc226f6148e3a2f14dd54e1f8007f9dfe438b9365027687937bb6550eb4c42aa1d391dad9c5fcbd118e906"
