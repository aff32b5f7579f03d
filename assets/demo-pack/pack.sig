format = "countersign-signature/1"
domain = "countersign/policy-pack/v1"
key_id = "24fb3ddf30b9bf59"
signature = "f3a69e0640e4ddcb859f1158d16f4462c4bcb2f28e1fa00130fffa3cf001884dee3bf536563ebc90f688c4d8f2c173b7327661f8dbdc6a263fbbf82f4ace510a"
