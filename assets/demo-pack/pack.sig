format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "02cc4292c335757b"
signature = "9f5e648612861d1a45e167fd4bc6064368462fc5d309b4097148393e9c0c3daa0e02a777cb55dd3369bd982ecc337119ae6f69c716aa47fcaa30884b4d44460c"
